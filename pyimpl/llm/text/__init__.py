"""Text on both sides of the engine: chat templates and tokenization (preprocessor), incremental
detokenization, stop strings, tool-call and reasoning parsers."""
