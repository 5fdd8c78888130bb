"""One exception type for everything a user can fix, so the CLI prints one clear line, never a stack."""


class PipelineError(Exception):
    """A problem with the input, the configuration or the lake, stated in one line.

    The message must name what is wrong and where (file, row, field, table) so an operator can act on it
    without reading a JVM trace.
    """
