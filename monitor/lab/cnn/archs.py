"""The 3D-CNN architectures and tasks by name, without PyTorch (checked before any model is built)."""

from monitor.cnn.card import CLASS_NAMES

# name → (block kind, blocks per stage) of the ResNet-3D (monitor/lab/cnn/model.py)
ARCHS = {"r3d18": ("basic", (2, 2, 2, 2)), "r3d34": ("basic", (3, 4, 6, 3)), "r3d50": ("bottleneck", (3, 4, 6, 3))}
TASKS = tuple(CLASS_NAMES)  # diagnosis, severity
