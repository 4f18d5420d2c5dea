"""A Finance build with a bug in ``submit_expense``, for the hot-fix test."""
