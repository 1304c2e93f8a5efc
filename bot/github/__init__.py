"""The only user of githubkit: App authentication, installation tokens, and create-or-update
(``ensure_*``) calls, so a re-run never duplicates a pull request, comment or check run."""
