"""Research and measurement tools: benchmarks, the validation of the measures on planted changes,
backend parity, planting synthetic weakness in real faces, and the 3D-CNN's training side.

May import: every stage but cli.
"""
