"""The request path, from the socket to the endpoint, one module per part. The nesting,
outermost first, as a request meets it:

protocol.py      the HTTP/1.1 protocol (uvicorn's httptools): the request head bounded,
                 JSON for what the parser refuses
middleware.py    the ASGI middleware, on the event loop, in this order (`stack`):
                   RequestIdentity  the request's Call (call.py) and its id, bound to logs
                   AccessLog        one log line and the metrics per request
                   DefaultHeaders   request id, nosniff, no-store, Bearer, X-RateLimit-*
                   LastResort       a JSON 500 for anything unexpected
                   AllowedHosts     400 for a Host not listed
                   BodyBound        413 past the body bound
                   CorsAnswers      CORS for the listed origins (cors.py)
                   UnroutedBudget   the budget for what no API route admitted (404,
                                    405, the docs), on the way out
                   HeadAsGet        HEAD served as GET without the body
route.py         the route: the endpoint's one declaration, what the route cannot take
                 (415, repeated query parameters), FastAPI's validation, then one hop
                 into a worker thread (Pools), where
admission.py       decides who is calling and whether they may: the token, its session,
                   the rate limits (SlowAPI, service/limits), 401 or 429
                 then the endpoint: service/routes -> service/services -> db/, sessions/
errors.py        every error rendered as JSON, once

Beside them: openapi.py (what the document says of them) and circuits.py (the breakers the
stores and the database call through).
"""
