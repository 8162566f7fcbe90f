"""facemonitor: real-time measurement of facial weakness in physical units.

A research measurement tool, not a diagnostic device.
"""

__version__ = "0.1.0"

DISCLAIMER = "facemonitor is a measurement and research tool, not a diagnostic device."
