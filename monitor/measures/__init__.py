"""Measures: from one frame's landmarks and pixels to millimetres and degrees, and from a session's
series to its session-level figures. Owns the face-model contract (landmark indices, blendshape
names), the numba kernels with their numpy references, the per-frame measures and their eye states,
the series columns' schema, quality checks, fatigue curves, asymmetry, expression, gaze, palsy
estimates and the session summary. Pure computation: no sockets, no files, no clocks.

May import: engines (result types, blendshape names), calibration, monitor.errors, monitor.protocol.
"""
