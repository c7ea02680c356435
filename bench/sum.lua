-- wrk script: POST /sum with a JSON body.
wrk.method = "POST"
wrk.path = "/sum"
wrk.body = '{"a":1,"b":2}'
wrk.headers["Content-Type"] = "application/json"
