"""The engine process: receives frames, runs the landmark model, the measures and the 3D-CNN, and
replies one result per frame; its typed options, its broker worker, and the local engine process a
client starts.

May import: engines, calibration, monitor.errors, monitor.measures, monitor.cnn, monitor.transport.
"""
