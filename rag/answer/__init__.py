"""From ranked sentences to the Answer: checking the question, choosing the sentences to cite,
and writing the answer (``base.Answerer``, chosen by ``RAG_ANSWERER`` from ``factory.ANSWERERS``)."""
