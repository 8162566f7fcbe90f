"""The guided-check web app: the core (checks, people, review) testable without a browser, the live
check over a session, the preview encoder, the step illustrations, the Gradio UI (one module per
tab) and the HTTP server with its own routes.

May import: every stage below it (session, report, store, …); nothing from lab or cli.
"""
