-- wrk script for `npm run bench`: every request is GET /users/<id> with that user's Bearer token, the client chosen
-- at random per request from the tokens file but its first line (mode "many") or always the first one, the flood
-- client (mode "hot"): a flood leaves that client over its limit, and the other modes must not meet it. Counts answers by
-- status and prints one `BENCH {json}` line that bench/run.mjs parses.
--   wrk -t1 -c50 -d10s -s bench/wrk-clients.lua http://127.0.0.1:PORT -- <tokens file> many|hot
local threads = {}

function setup (thread)
  table.insert(threads, thread)
end

local requests = {}
local count = 0

function init (args)
  local path, mode = args[1], args[2] or 'many'
  local first = true
  for line in io.lines(path) do
    local id, token = line:match('^(%S+) (%S+)$')
    local skip = first and mode == 'many'
    first = false
    if id and not skip then
      count = count + 1
      requests[count] = wrk.format('GET', '/users/' .. id, { ['Authorization'] = 'Bearer ' .. token })
      if mode == 'hot' then break end
    end
  end
  assert(count > 0, 'no tokens in ' .. tostring(path))
  math.randomseed(os.time() + (tonumber(tostring(requests):match('0x(%x+)'), 16) or 0))
  ok, limited, other = 0, 0, 0
end

function request ()
  return requests[math.random(count)]
end

function response (status)
  if status < 300 then ok = ok + 1
  elseif status == 429 then limited = limited + 1
  else other = other + 1 end
end

function done (summary, latency)
  local s_ok, s_limited, s_other = 0, 0, 0
  for _, thread in ipairs(threads) do
    s_ok = s_ok + thread:get('ok')
    s_limited = s_limited + thread:get('limited')
    s_other = s_other + thread:get('other')
  end
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"durationUs":%d,"ok":%d,"limited":%d,"other":%d,' ..
    '"socketErrors":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, s_ok, s_limited, s_other,
    e.connect + e.read + e.write, e.timeout, latency:percentile(50), latency:percentile(99)))
end
