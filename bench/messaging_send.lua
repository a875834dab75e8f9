-- bench/messaging_send.lua: wrk script for bench/messaging. Every request is an authenticated
-- POST /v1/projects/{project}/messages:send of a short Telegram text, to one of
-- MESSAGING_IDENTITIES recipients (default 16) identified by channel identity, so that the
-- contact lookup and the find-or-start of a conversation run as they would for real traffic.
--
-- Environment (set by bench/messaging): MESSAGING_PROJECT, MESSAGING_APP, MESSAGING_AUTH
-- (the whole Authorization header value), MESSAGING_IDENTITIES.

local project = os.getenv("MESSAGING_PROJECT")
local app = os.getenv("MESSAGING_APP")
local auth = os.getenv("MESSAGING_AUTH")
local nids = tonumber(os.getenv("MESSAGING_IDENTITIES") or "16") or 16

if not project or not app or not auth then
   io.stderr:write("messaging_send.lua: MESSAGING_PROJECT, MESSAGING_APP and MESSAGING_AUTH must be set\n")
   os.exit(2)
end

local threads = 0
function setup(thread)
   threads = threads + 1
   thread:set("thread_no", threads)
end

local reqs = {}
local n = 0

function init(args)
   local path = "/v1/projects/" .. project .. "/messages:send"
   for i = 1, nids do
      local body = string.format(
         '{"app_id":"%s","recipient":{"identified_by":{"channel_identities":' ..
         '[{"channel":"TELEGRAM","identity":"%d"}]}},"message":{"text_message":{"text":"bench %d"}}}',
         app, 1000 + i, i)
      local headers = { ["Authorization"] = auth, ["Content-Type"] = "application/json" }
      reqs[i] = wrk.format("POST", path, headers, body)
   end
   -- Threads start at different recipients, so they do not move in lock step.
   n = ((thread_no or 1) * 7) % nids
end

function request()
   n = n % nids + 1
   return reqs[n]
end
