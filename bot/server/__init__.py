"""The webhook receiver, the HTTP side of ``lockwarden serve``.

``bot.server.app.create_app(settings, queue)`` builds the FastAPI app; ``webhook`` holds the
``POST /webhook`` pipeline and the router; one module per event decides what a delivery
asks for (``push``, ``installation``, ``pull_request``, ``issue_comment``, ``check_run``,
``check_suite``).
"""
