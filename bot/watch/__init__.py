"""The upstream release watch: which packages installed repositories lock, and a periodic pass
that asks each index about them and queues targeted refreshes for new and yanked releases."""
