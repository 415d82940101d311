"""Reading the outside world: image files, text columns, DataFrame columns."""
