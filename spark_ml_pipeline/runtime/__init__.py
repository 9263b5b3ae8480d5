"""Runtime: layered configuration, the Spark session, errors, I/O on any Hadoop filesystem, database URLs, the
command line, finding the named pipelines and checking their plugins against their contracts. Every other
package builds on this one. Its surface is its modules, imported by name (nothing is re-exported: one import
path per name)."""

__all__ = ["class_archive", "cli", "config", "config_models", "contracts", "database_urls", "discovery", "errors", "io",
           "live_view", "locks", "session", "verbosity"]
