"""The 3D-CNN's training side (``train`` extra): models, checkpoints and ONNX export, datasets cut from
logged sessions or video folders, synthetic subjects, k-fold training with patient-level metrics,
evaluation and interpretable baselines. Modules that need PyTorch or scikit-learn import them lazily.
"""
