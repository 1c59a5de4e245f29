"""The one orchestrator every trigger goes through: the Scanner (requests, coalescing, no
overlap), the pipeline (scope -> plan -> render -> apply), the pure planner, render workers,
media copy, the state kept between scans and the link index."""

from feedsvc.scan.scanner import Scanner

__all__ = ["Scanner"]
