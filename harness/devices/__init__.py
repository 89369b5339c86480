"""Devices beyond the process itself: Jetson boards, energy counters, modeled devices.

* :mod:`evbench.harness.devices.jetson` — board detection, power mode, clocks, INA3221 rails
  (standard library only, so the minimal device agent can carry it).
* :mod:`evbench.harness.devices.energy` — joules per clip from NVML, RAPL or Jetson rails.
* :mod:`evbench.harness.devices.modeled` — roofline latency model of a device that is not attached.
"""
