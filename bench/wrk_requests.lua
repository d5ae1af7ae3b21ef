-- Replays pre-signed WeChat webhook requests, one per line: "<path?query>\t<body>".
-- Each request carries its own MsgId, so the gateway's dedup never short-cuts them.
local requests = {}
local index = 0

function init(args)
  local path = os.getenv("KEFU_BENCH_REQUESTS")
  for line in io.lines(path) do
    local tab = string.find(line, "\t", 1, true)
    requests[#requests + 1] = wrk.format("POST", string.sub(line, 1, tab - 1),
      {["Content-Type"] = "text/xml"}, string.sub(line, tab + 1))
  end
end

function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end
