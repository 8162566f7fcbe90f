"""The 3D-CNN at run time: face crops aligned by the landmarks, the 64-frame clip window, the clip engine
beside the landmark path, model cards, and per-step votes. No clinical weights ship: a model is shown
to a user only with its model card (docs/cnn.md). Training is in monitor.lab.cnn.

May import: engines, monitor.errors, monitor.measures (landmark indices).
"""
