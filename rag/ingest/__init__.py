"""From files to documents and sentences: discovering files, loading each by its type,
splitting the stored text into sentences with exact offsets."""
