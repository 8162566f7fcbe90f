"""The 3D-CNN over 64-frame face clips: aligned crops, the live clip window, clip runtimes (ONNX Runtime,
TensorRT), per-step votes, and — with the ``train`` extra — models, datasets, training and evaluation.

Modules that need PyTorch or scikit-learn (model, checkpoint, train, baselines) import them lazily, so
the live engine needs neither. No clinical weights ship: a model is shown to a user only with its model
card (see docs/cnn.md).
"""
