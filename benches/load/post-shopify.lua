-- wrk script: POST the Shopify orders/create fixture as a JSON webhook.
local f = assert(io.open(os.getenv("RAILYARD_FIXTURE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
