"""Answering claims from stored results (``evbench claims --results RUN``).

A claim that needs a dataset or a device that is not here can be answered by
a stored row (:func:`evbench.harness.results.load`) of the same method and
configuration measured on that dataset or device; these functions find that
row and turn one of its columns into a :class:`Measurement`.
"""

from __future__ import annotations

from typing import Any

from evbench.harness.claims.schema import Measurement

__all__ = ["dataset_match", "stored_rows", "from_results"]

_DATASET_ALIASES = {
    "activitynet-v1.3": ("activitynet",), "ucf101": ("ucf101",), "hmdb51": ("hmdb51", "hmdb"),
    "fcvid": ("fcvid",), "mini-kinetics": ("mini-kinetics", "minikinetics", "mini_kinetics"),
}


def dataset_match(claim_ds: str, row_ds: Any) -> bool:
    """True when a stored row's dataset name denotes ``claim_ds`` (case-insensitive prefix).

    Args:
        claim_ds: The claim's dataset (e.g. ``"ActivityNet-v1.3"``, ``"HMDB51"``).
        row_ds: A stored row's ``dataset`` value (non-strings never match).
    """
    if not isinstance(row_ds, str):
        return False
    prefixes = _DATASET_ALIASES.get(claim_ds.lower(), (claim_ds.lower(),))
    name = row_ds.lower()
    return any(name.startswith(p) for p in prefixes)


def stored_rows(df: Any, method: str | None, config: str, dataset: str | None = None,
                device: str | None = None) -> Any:
    """The ``ok`` rows of ``method`` [``config``] in a results DataFrame, optionally on a dataset / device.

    Rows on a synthetic dataset never answer a dataset claim; modeled rows never
    answer a device claim.

    Args:
        df: A :func:`evbench.harness.results.load` DataFrame, or None.
        method: Registered method name (None matches nothing).
        config: Configuration name.
        dataset: Claim dataset (matched with :func:`dataset_match`), or None for any.
        device: Device substring (case-insensitive), or None for any.

    Returns:
        The matching rows, or None when there are none.
    """
    if df is None or getattr(df, "empty", True) or not method:
        return None
    rows = df
    if "status" in rows:
        rows = rows[rows["status"] == "ok"]
    rows = rows[(rows.get("method") == method)] if "method" in rows else rows.iloc[0:0]
    if "config" in rows:
        rows = rows[rows["config"] == config]
    if dataset is not None:
        rows = rows[rows["dataset"].map(lambda d: dataset_match(dataset, d))] if "dataset" in rows else rows.iloc[0:0]
        if "dataset_synthetic" in rows:
            rows = rows[~rows["dataset_synthetic"].fillna(False).astype(bool)]
    if device is not None:
        dev = rows["device"].astype(str).str.lower() if "device" in rows else None
        rows = rows[dev.str.contains(device.lower(), regex=False)] if dev is not None else rows.iloc[0:0]
        if "modeled" in rows:
            rows = rows[~rows["modeled"].fillna(False).astype(bool)]
    return rows if len(rows) else None


def from_results(rows: Any, column: str, scale: float, what: str, results_path: str | None) -> Measurement | None:
    """A measurement from the last of ``rows`` that has ``column``.

    Args:
        rows: :func:`stored_rows` output, or None.
        column: Row column holding the value (e.g. ``"top1"``, ``"gmacs_per_video"``).
        scale: Factor to the claim's unit (100 for stored fractions vs % claims).
        what: Description of the match, for the caveat when several rows match.
        results_path: Where the rows came from (named in the row's reason).

    Returns:
        The :class:`Measurement`, or None when no row has a value in ``column``.
    """
    if rows is None or column not in rows:
        return None
    vals = rows[column].dropna()
    if vals.empty:
        return None
    row = rows.loc[vals.index[-1]]
    value = float(row[column]) * scale
    cell = row.get("cell_id", "?")
    m = Measurement(value=value, measured_by=f"stored result {results_path}: cell {cell} ({column})",
                    reason=f"from --results {results_path}, cell {cell}, dataset {row.get('dataset')}")
    if len(vals) > 1:
        m.info["stored_rows_matching"] = int(len(vals))
        m.caveats.append(f"{len(vals)} stored rows match ({what}); the last one is used.")
    return m
