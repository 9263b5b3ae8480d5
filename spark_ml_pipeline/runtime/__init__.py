"""Runtime: layered configuration, the Spark session, errors, I/O on any Hadoop filesystem, the command line,
and finding the named pipelines. Every other package builds on this one."""
