"""Many calls: the nightly batch, call metadata, the Dask runner, backtests."""
