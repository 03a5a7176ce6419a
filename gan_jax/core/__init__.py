"""The foundations every layer reads: the error wording, the live tables of components, code
digests, the library's random words.
"""
