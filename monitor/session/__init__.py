"""One analysis session: source → capture thread → ZeroMQ → engine → series in the store, with its
typed options, its reply loop, its result and its end-of-session summary.

May import: everything below it: engines, calibration, monitor.errors, protocol, measures, cnn,
capture, transport, store, engine.
"""
