"""Jobs: what the receiver asks the workers to do, the queues that carry the requests, and
the runner that does them.

``queue`` holds the request, the queue interface and the in-memory queue; ``postgres`` the
durable queue; ``payloads`` one typed payload per job kind; ``branches`` the bot branches'
values; ``runner`` runs each job kind.
"""
