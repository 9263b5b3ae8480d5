"""Feature engineering as Spark ML stages and native column expressions (no Python UDFs), shared by the
library's pipelines: the stateless stage base, array and grid-field expressions, great-circle distances, hashed
categories, image and text features, standardisation, tabular features declared by configuration, and the taxi
trips' features. Its surface is its modules."""

__all__ = ["arrays", "categories", "fields", "geo", "images", "scaling", "stages", "tabular", "taxi", "text"]
