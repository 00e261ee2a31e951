"""The request path, from the socket to the endpoint, one module per step in call order:

1. step1_protocol  the HTTP/1.1 protocol: the request head bounded, JSON for what the
                   parser refuses
2. step2_asgi      the ASGI middleware: creates the request's Call (call.py); request id,
                   Host, CORS (cors.py), HEAD, default headers, access log, metrics, the
                   last-resort 500
3. step3_route     the route wrapper: reads the endpoint's one declaration and makes one
                   hop into a worker thread, where steps 4 and 5 and the endpoint run
4. step4_auth      the bearer token verified; 401 for a protected route without a live
                   session
5. step5_budget    the rate limits spent through SlowAPI (service/limits); the budget's
                   hit checks the token's session in the same Redis round trip
   (the endpoint)  service/routes -> service/services -> db/ and sessions/
6. step6_errors    every error rendered as JSON, once

Beside them: openapi.py (what the document says of the steps) and circuits.py (the
breakers the stores and the database call through).
"""
