"""The disk and git: which files a source has and reading them safely (walk), the git work
tree a source may live in (git), first-import dates (dates), and watching a folder (watch).

Knows nothing of Markdown, the store or the web."""
