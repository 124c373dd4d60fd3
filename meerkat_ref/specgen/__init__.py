"""Generators of ``spec/``: the conformance vectors and the generated sections of the documents.

Apart from the runtime: nothing in the service or the oracle imports them.
"""
