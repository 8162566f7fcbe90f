"""The protocol: the 24 step names every analysis shares, protocols as data (built-in and custom
files), the steps file of a recorded video, and the pure state machine that runs a protocol.
Nothing here reads a clock or a camera.

May import: monitor.errors.
"""
