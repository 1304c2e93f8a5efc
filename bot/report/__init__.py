"""Reports: Markdown (PR body, comments), JSON and the terminal summary, from run results."""
