"""Capture: video sources (webcam, file, stream URL, a browser's camera), the mailbox that hands
frames to the sender in live or record mode, and the capture thread with its watchdog.

May import: engines (native log levels), monitor.errors.
"""
