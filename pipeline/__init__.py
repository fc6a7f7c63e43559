"""pipeline: reports in, drafts out, approved stories pushed daily on time."""

__version__ = "0.1.0"
