"""Document inspection: file-type sniffing, PDF inspection in a sandboxed child, and bank
statement parsing. Pure Python, no I/O besides the PDF child process; callers fetch bytes from S3.
"""
