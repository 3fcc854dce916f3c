"""The ``pifed`` command line: a thin shell over model/, edge/ and federated/."""
