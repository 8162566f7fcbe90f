"""The protocol: the 24 step names every analysis shares, protocols as data (built-in and custom
files), the steps file of a recorded video, the pure state machine that runs a protocol, and the
eight poses of a facial-palsy photo set.
Nothing here reads a clock or a camera.

May import: monitor.errors.
"""
