"""The Dockerfile, read once: ``syntax`` (instructions, heredocs, directives, pragmas, shell
words), ``shell`` (the simple commands of ``RUN``), ``from_lines`` (stages and base images),
and the checks built on them (``checks``, ``rules``, ``hadolint``)."""
