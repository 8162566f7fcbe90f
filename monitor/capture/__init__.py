"""Capture: video sources (webcam, file, photo, palsy photo set, stream URL, a browser's camera), the
mailbox that hands frames to the sender in live or record mode, and the capture thread with its
watchdog.

May import: engines (native log levels), monitor.errors, monitor.protocol (the photo-set poses).
"""
