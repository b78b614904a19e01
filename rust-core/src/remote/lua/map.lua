#!lua name=hms_@V@
-- hashmap-shared: every operation on one shard of a map, atomically: a Redis Functions
-- library (remote/mod.rs loads it with FUNCTION LOAD on each master that lacks it and
-- calls it with FCALL; remote/model.rs documents the keys and encodings). @V@ is a hash
-- of this text, so two versions of the module on one server each have their own.
--
-- Why a library rather than a script: EVALSHA runs the whole chunk on every call,
-- creating each helper closure anew (~15 us of server CPU per call on Redis 7.0); a
-- library's chunk runs once at FUNCTION LOAD, and a call runs only its operation.
--
-- One function per operation, hms_@V@_OP (the name carries the op: every argument
-- costs the server a string and a table slot per call), with the flags of what Redis
-- must allow it (KIND below): reads are no-writes (served even at maxmemory);
-- operations that only mark or free are allow-oom (an LRU read marks its entry,
-- remove/take/clear free memory: neither may be refused at maxmemory); writes have no
-- flag, so Redis refuses them with OOM at maxmemory (the soft failure of a full map).
--
-- KEYS: M meta hash, D data hash, then those of X expiry zset (whole seconds of the
--       server's TIME), L LRU zset (score: promotion clock, head = highest), A accessed
--       set (second chance), U set of string keys stored with Perl's UTF-8 flag, that
--       the map uses (declared for Redis Cluster); their names are M's with another
--       last letter. A single server is given M alone (each declared key costs it a
--       Lua string per call): the names of the others come from M.
-- ARGV: the map id (the routing seed: a map unlinked and made anew meanwhile is
--       "gone"), then the operation's arguments (trailing ones a map without TTL or
--       LRU does not use may be left out).
--
-- Numbers: 64-bit values never pass through a Lua number (a double): int values are
-- stored and returned as canonical decimal strings, compared as strings (icmp) and
-- added with HINCRBY (exact int64); only 16/32-bit values, expiries and clocks
-- (all below 2^53) are Lua numbers.
--
-- The call's keys and the map's settings are the library's locals, set at the start of
-- every call (begin): Redis runs one function at a time to its end, so no two calls
-- ever see each other's values.
local M, D, X, L, A, U
local frozen, vk, ttl, max_size, max_entries, strkey, ttl_on, lru_on
local now
local ARGV

-- The globals the operations use, as locals: a global lookup in a function library
-- goes through the sandbox's metatable on every access (measured with callgrind: most
-- of a call's Lua time). Loading runs without them (only the redis API is there), so
-- the first call fills them in (init).
local rcall, rpcall, rerr, tonum, ssub, sfind, sformat, ltype, lunpack, mmin, tostr

local function init()
  rcall, rpcall, rerr = redis.call, redis.pcall, redis.error_reply
  tonum, ltype, lunpack, tostr = tonumber, type, unpack, tostring
  ssub, sfind, sformat, mmin = string.sub, string.find, string.format, math.min
end

local ops = {}

local function clock()
  if not now then now = tonum(rcall('TIME')[1]) end
  return now
end

-- Has live-or-expired entry k expired? (Permanent entries have no score.)
local function expired(k)
  if not ttl_on then return false end
  local e = rcall('ZSCORE', X, k)
  return e and tonum(e) <= clock()
end

local function unlink_entry(k)
  rcall('HDEL', D, k)
  if ttl_on then rcall('ZREM', X, k) end
  if lru_on then rcall('ZREM', L, k); rcall('SREM', A, k) end
  if strkey then rcall('SREM', U, k) end
end

local function reclaim(k)
  unlink_entry(k)
  rcall('HINCRBY', M, 'expired', 1)
end

-- The value of k if it is live; an expired entry is reclaimed (counted): false.
local function live(k)
  local v = rcall('HGET', D, k)
  if v and expired(k) then reclaim(k); return false end
  return v
end

local function tick() return rcall('HINCRBY', M, 'clock', 1) end

-- LRU promotion (lru.rs promote): the head stays; a skipped promotion ('0', decided by
-- the caller's lru_skip sequence) does nothing unless k is the tail.
local function promote(k, flag)
  if rcall('ZRANGE', L, -1, -1)[1] == k then return end
  if flag == '0' and rcall('ZRANGE', L, 0, 0)[1] ~= k then return end
  rcall('ZADD', L, tick(), k)
  rcall('SREM', A, k)
end

-- Expiry of an existing entry: 'd' resets a non-permanent one to now + default, 's'
-- sets it from secs (0: permanent).
local function set_exp(k, mode, secs)
  if not ttl_on then return end
  if mode == 'd' then
    if rcall('ZSCORE', X, k) then rcall('ZADD', X, clock() + ttl, k) end
  else
    local s = tonum(secs)
    if s == 0 then rcall('ZREM', X, k) else rcall('ZADD', X, clock() + s, k) end
  end
end

local function hit(k, mode, secs, flag)
  if lru_on then promote(k, flag) end
  set_exp(k, mode, secs)
end

-- Second chance from the tail (lru.rs victim): accessed entries go to the head with
-- the mark cleared; the first unmarked one is removed (an expired victim counts as
-- expired). After 100000 second chances in one call the tail goes regardless.
local function evict_one()
  local steps = 0
  while true do
    local v = rcall('ZRANGE', L, 0, 0)[1]
    if not v then return end
    if steps < 100000 and rcall('SREM', A, v) == 1 then
      rcall('ZADD', L, tick(), v)
      steps = steps + 1
    else
      local ex = expired(v)
      unlink_entry(v)
      rcall('HINCRBY', M, ex and 'expired' or 'evictions', 1)
      return
    end
  end
end

-- Inserts absent k (map.rs insert_new): evict first on an LRU map at max_size; false
-- when the map holds max_entries already.
local function insert(k, v, kf, mode, secs)
  if lru_on and rcall('HLEN', D) >= max_size then evict_one() end
  if rcall('HLEN', D) >= max_entries then return false end
  rcall('HSET', D, k, v)
  if strkey and kf == '1' then rcall('SADD', U, k) end
  if lru_on then rcall('ZADD', L, tick(), k) end
  if ttl_on then
    local s = ttl
    if mode == 's' then s = tonum(secs) end
    if s > 0 then rcall('ZADD', X, clock() + s, k) end
  end
  return true
end

-- Compares canonical decimal integers exactly (-1, 0, 1), as strings.
local function icmp(a, b)
  local na, nb = ssub(a, 1, 1) == '-', ssub(b, 1, 1) == '-'
  if na ~= nb then return na and -1 or 1 end
  if a == b then return 0 end
  local r
  if #a ~= #b then r = (#a < #b) and -1 or 1 else r = (a < b) and -1 or 1 end
  if na then r = -r end
  return r
end

-- Does stored value v equal expected e? (strings: bytes only, the flag byte skipped)
local function veq(v, e)
  if vk == 's' then return ssub(v, 2) == e end
  return v == e
end

local function kflag(k)
  if strkey and rcall('SISMEMBER', U, k) == 1 then return 1 end
  return 0
end

-- Removes and returns one entry from an end (map.rs take_end): LRU maps: the tail
-- ('t', pop) or the head ('h', shift); others: the first entry a hash scan meets.
-- Expired entries met are reclaimed and skipped.
local function take_end(e)
  while true do
    local k
    if lru_on then
      if e == 'h' then k = rcall('ZRANGE', L, -1, -1)[1] else k = rcall('ZRANGE', L, 0, 0)[1] end
    else
      local c = '0'
      repeat
        local r = rcall('HSCAN', D, c, 'COUNT', 16)
        c = r[1]
        if #r[2] > 0 then
          if e == 'h' then k = r[2][#r[2] - 1] else k = r[2][1] end
        end
      until k or c == '0'
    end
    if not k then return false end
    if expired(k) then
      reclaim(k)
    else
      local v = rcall('HGET', D, k)
      local f = kflag(k)
      unlink_entry(k)
      return {k, v, f}
    end
  end
end


-- Reads ------------------------------------------------------------------------------

ops.get = function()  -- k, mark ('1': LRU accessed mark)
  local k = ARGV[2]
  local v = rcall('HGET', D, k)
  if not v or expired(k) then return false end
  if lru_on and ARGV[3] == '1' and not frozen then rpcall('SADD', A, k) end
  return v
end

ops.getx = function()  -- k, mark: {value, seconds left (0 permanent, -1 no TTL)}
  local k = ARGV[2]
  local v = rcall('HGET', D, k)
  if not v or expired(k) then return false end
  if lru_on and ARGV[3] == '1' and not frozen then rpcall('SADD', A, k) end
  if not ttl_on then return {v, -1} end
  local e = rcall('ZSCORE', X, k)
  if not e then return {v, 0} end
  return {v, tonum(e) - clock()}
end

ops.ttl = function()  -- k: seconds left, 0 permanent, false missing/expired
  local k = ARGV[2]
  if rcall('HEXISTS', D, k) == 0 then return false end
  local e = rcall('ZSCORE', X, k)
  if not e then return 0 end
  e = tonum(e) - clock()
  if e <= 0 then return false end
  return e
end

ops.exists = function()
  local k = ARGV[2]
  if rcall('HEXISTS', D, k) == 0 or expired(k) then return 0 end
  return 1
end

ops.mget = function()  -- mark, keys...: one value (or false) per key
  local out = {}
  local mark = lru_on and ARGV[2] == '1' and not frozen
  for i = 3, #ARGV do
    local k = ARGV[i]
    local v = rcall('HGET', D, k)
    if v and expired(k) then v = false end
    if v and mark then rpcall('SADD', A, k) end
    out[#out + 1] = v
  end
  return out
end

-- Live entries as {k, v, kflag, ...}: a scan step ({next cursor, entries...}) or,
-- when the shard holds at most `limit` entries, all of them (false otherwise).
ops.scan = function()  -- cursor, count
  local r = rcall('HSCAN', D, ARGV[2], 'COUNT', tonum(ARGV[3]))
  local out = {r[1]}
  local kv = r[2]
  for i = 1, #kv, 2 do
    if not expired(kv[i]) then
      out[#out + 1] = kv[i]; out[#out + 1] = kv[i + 1]; out[#out + 1] = kflag(kv[i])
    end
  end
  return out
end

ops.all = function()  -- limit
  if rcall('HLEN', D) > tonum(ARGV[2]) then return false end
  local kv = rcall('HGETALL', D)
  local out = {}
  for i = 1, #kv, 2 do
    if not expired(kv[i]) then
      out[#out + 1] = kv[i]; out[#out + 1] = kv[i + 1]; out[#out + 1] = kflag(kv[i])
    end
  end
  return out
end

ops.seek = function()  -- k: {value, kflag} of a live entry, or false
  local k = ARGV[2]
  local v = rcall('HGET', D, k)
  if not v or expired(k) then return false end
  return {v, kflag(k)}
end

-- Inconsistencies between the shard's keys (a diagnostic: walks everything).
ops.verify = function()
  local out = {}
  local function each_member(key, kind, what)
    local ms
    if kind == 'z' then ms = rcall('ZRANGE', key, 0, -1) else ms = rcall('SMEMBERS', key) end
    for i = 1, #ms do
      if rcall('HEXISTS', D, ms[i]) == 0 then
        out[#out + 1] = what .. ' lists a key that is not in the map: ' .. ms[i]
        if #out > 100 then return end
      end
    end
  end
  if ttl_on then each_member(X, 'z', 'expiry index') end
  if lru_on then
    each_member(L, 'z', 'LRU list'); each_member(A, 's', 'accessed set')
    local n, l = rcall('HLEN', D), rcall('ZCARD', L)
    if n ~= l then out[#out + 1] = 'LRU list holds ' .. l .. ' keys, the map ' .. n end
  end
  if strkey then each_member(U, 's', 'UTF-8 key set') end
  return out
end

ops.stats = function()
  local s = rcall('HMGET', M, 'evictions', 'expired')
  return {rcall('HLEN', D), tonum(s[1] or 0), tonum(s[2] or 0), frozen and 1 or 0}
end

ops.unlink = function()
  return rcall('DEL', M, D, X, L, A, U) > 0 and 1 or 0
end

-- Writes (refused on frozen maps) ----------------------------------------------------

ops.put = function()  -- k, v, kf, mode, secs, flag
  local k = ARGV[2]
  if not (ttl_on or lru_on) then
    -- A plain map: HSET inserts or overwrites; a new key (1) that takes the map past
    -- max_entries is taken out again (no map ever holds more: HLEN above it can only
    -- be this insert).
    if rcall('HSET', D, k, ARGV[3]) == 1 then
      if rcall('HLEN', D) > max_entries then rcall('HDEL', D, k); return 0 end
      if strkey and ARGV[4] == '1' then rcall('SADD', U, k) end
    end
    return 1
  end
  if rcall('HEXISTS', D, k) == 1 then
    -- A hit, expired or not: put revives.
    rcall('HSET', D, k, ARGV[3])
    hit(k, ARGV[5], ARGV[6], ARGV[7])
    return 1
  end
  return insert(k, ARGV[3], ARGV[4], ARGV[5], ARGV[6]) and 1 or 0
end

ops.mset = function()  -- flag, then k, v, kf triples: how many were stored
  local n = 0
  for i = 3, #ARGV, 3 do
    local k = ARGV[i]
    if rcall('HEXISTS', D, k) == 1 then
      rcall('HSET', D, k, ARGV[i + 1])
      hit(k, 'd', 0, ARGV[2])
      n = n + 1
    elseif insert(k, ARGV[i + 1], ARGV[i + 2], 'd', 0) then
      n = n + 1
    end
  end
  return n
end

ops.add = function()  -- k, v, kf, mode, secs
  if live(ARGV[2]) then return 0 end
  return insert(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]) and 1 or 0
end

ops.update = function()  -- k, v, mode, secs, flag
  local k = ARGV[2]
  if not live(k) then return 0 end
  rcall('HSET', D, k, ARGV[3])
  hit(k, ARGV[4], ARGV[5], ARGV[6])
  return 1
end

ops.swap = function()  -- k, v, kf, flag: the old value, or false
  local k = ARGV[2]
  local cur = live(k)
  if cur then
    rcall('HSET', D, k, ARGV[3])
    hit(k, 'd', 0, ARGV[5])
    return cur
  end
  insert(k, ARGV[3], ARGV[4], 'd', 0)
  return false
end

ops.take = function()  -- k
  local k = ARGV[2]
  local cur = live(k)
  if cur then unlink_entry(k) end
  return cur
end

ops.remove = function()  -- k (expired or not, not counted)
  local k = ARGV[2]
  if rcall('HEXISTS', D, k) == 0 then return 0 end
  unlink_entry(k)
  return 1
end

ops.mdel = function()  -- keys...
  local n = 0
  for i = 2, #ARGV do
    local k = ARGV[i]
    if rcall('HEXISTS', D, k) == 1 then unlink_entry(k); n = n + 1 end
  end
  return n
end

ops.gos = function()  -- k, v, kf, flag (get_or_set)
  local k = ARGV[2]
  local cur = live(k)
  if cur then hit(k, 'd', 0, ARGV[5]); return cur end
  if insert(k, ARGV[3], ARGV[4], 'd', 0) then return ARGV[3] end
  return false
end

ops.cas = function()  -- k, expected (bytes or decimal), desired (stored form), flag
  local k = ARGV[2]
  local cur = live(k)
  if not cur or not veq(cur, ARGV[3]) then return 0 end
  rcall('HSET', D, k, ARGV[4])
  hit(k, 'd', 0, ARGV[5])
  return 1
end

ops.cast = function()  -- k, expected (cas_take)
  local k = ARGV[2]
  local cur = live(k)
  if not cur or not veq(cur, ARGV[3]) then return false end
  unlink_entry(k)
  return cur
end

-- HINCRBY of an entry of a plain map (ops.incr's plain branch, fast.incr): adds or
-- inserts. A result equal to the delta may be an insert: one that takes the map past
-- max_entries (cap) is taken out again (HLEN above it can only be this insert). The
-- reply is a Lua number, exact below 2^53: beyond that the stored decimal is read back.
-- nil when the result would wrap, with nothing changed: an int64 overflow (Redis
-- refuses it) or a 16/32-bit result out of the width (never an insert: the delta is
-- narrowed; undone here).
local function plain_incr(d, k, n, width, cap)
  local r = rpcall('HINCRBY', d, k, n)
  if ltype(r) ~= 'number' then
    if sfind(r.err, 'overflow', 1, true) then return nil end
    return r
  end
  if r == tonum(n) and rcall('HLEN', d) > cap then
    rcall('HDEL', d, k)
    return rerr('HMS full')
  end
  if width == 'i64' then
    if r < 9007199254740992 and r > -9007199254740992 then return r end
    return rcall('HGET', d, k)
  end
  local lim = 32768
  if width == 'i32' then lim = 2147483648 end
  if r < lim and r >= -lim then return r end
  rcall('HINCRBY', d, k, -tonum(n))
  return nil
end

ops.incr = function()  -- k, delta, delta with its top bit flipped, kf, flag (a bare
                       -- call of an unflagged key on a plain map: k, delta only)
  local k, d = ARGV[2], ARGV[3]
  -- A plain map, a key without the UTF-8 flag (a new one needs no mark): plain_incr;
  -- a result that wraps takes the general way below.
  if not (ttl_on or lru_on) and ARGV[5] ~= '1' then
    local r = plain_incr(D, k, d, vk, max_entries)
    if r ~= nil then return r end
  end
  local cur = live(k)
  if not cur then
    if not insert(k, d, ARGV[5], 'd', 0) then return rerr('HMS full') end
    return d
  end
  local r
  if vk == 'i64' then
    local ok = rpcall('HINCRBY', D, k, d)
    if ltype(ok) == 'table' and ok.err then
      if not sfind(ok.err, 'overflow', 1, true) then return ok end
      -- A bare call (fast.incr's) lacks w: nothing is changed yet, the caller resends.
      if not ARGV[4] then return rerr('HMS wrap') end
      -- Two's-complement wrap in exact int64 steps (w = delta xor 2^63, from the caller):
      -- up: cur - 2^63 + (delta - 2^63); down: cur + (2^63 - 1) + (delta + 2^63) + 1.
      if ssub(d, 1, 1) == '-' then
        rcall('HINCRBY', D, k, '9223372036854775807')
        rcall('HINCRBY', D, k, ARGV[4])
        rcall('HINCRBY', D, k, 1)
      else
        rcall('HINCRBY', D, k, '-9223372036854775808')
        rcall('HINCRBY', D, k, ARGV[4])
      end
    end
    r = rcall('HGET', D, k)
  else
    local bits = 65536
    if vk == 'i32' then bits = 4294967296 end
    local n = tonum(cur) + tonum(d)
    n = (n + bits / 2) % bits - bits / 2
    r = sformat('%d', n)
    rcall('HSET', D, k, r)
  end
  hit(k, 'd', 0, ARGV[6])
  return r
end

local function bound(better)  -- k, v, kf, flag
  local k, v = ARGV[2], ARGV[3]
  local cur = live(k)
  if not cur then
    if not insert(k, v, ARGV[4], 'd', 0) then return rerr('HMS full') end
    return v
  end
  if better(icmp(v, cur)) then
    rcall('HSET', D, k, v)
    cur = v
  end
  hit(k, 'd', 0, ARGV[5])
  return cur
end
ops.max = function() return bound(function(c) return c > 0 end) end
ops.min = function() return bound(function(c) return c < 0 end) end

ops.touch = function()  -- k, flag
  if not (ttl_on or lru_on) then return 0 end
  local k = ARGV[2]
  if not live(k) then return 0 end
  hit(k, 'd', 0, ARGV[3])
  return 1
end

ops.persist = function()  -- k
  if not ttl_on then return 0 end
  local k = ARGV[2]
  if not live(k) then return 0 end
  rcall('ZREM', X, k)
  return 1
end

ops.setttl = function()  -- k, secs
  if not ttl_on then return 0 end
  local k = ARGV[2]
  if not live(k) then return 0 end
  set_exp(k, 's', ARGV[3])
  return 1
end

ops.flush = function()  -- limit: {removed, 1 when no expired entry is left}
  if not ttl_on then return {0, 1} end
  local lim = tonum(ARGV[2])
  local due = rcall('ZRANGEBYSCORE', X, '-inf', clock(), 'LIMIT', 0, lim)
  for i = 1, #due do reclaim(due[i]) end
  local done = 1
  if #due == lim and rcall('ZCOUNT', X, '-inf', clock()) > 0 then done = 0 end
  return {#due, done}
end

ops.pop = function()  -- end ('t' pop, 'h' shift): {k, v, kflag} or false
  return take_end(ARGV[2])
end

ops.drain = function()  -- n: {k, v, kflag, ...} in pop order, n clamped to the size
  local n = mmin(tonum(ARGV[2]), rcall('HLEN', D))
  local out = {}
  local got = 0
  while got < n do
    local e = take_end('t')
    if not e then break end
    out[#out + 1] = e[1]; out[#out + 1] = e[2]; out[#out + 1] = e[3]
    got = got + 1
  end
  return out
end

ops.clear = function()
  rcall('UNLINK', D, X, L, A, U)
  rcall('HINCRBY', M, 'gen', 1)
  return 1
end

ops.reserve = function() return 1 end

ops.freeze = function()
  rcall('HSET', M, 'frozen', '1')
  rcall('HDEL', M, 'w')  -- no write token: every mutator takes begin's full check
  return 1
end

-- open: ARGV: open, id, then field/value pairs to create the meta hash with, then
-- 'create' or 'attach' last. Returns the meta as stored (false: absent and not made).
ops.open = function()
  local fields = {'version', 'variant', 'index', 'count', 'id', 'frozen', 'max_entries',
    'max_size', 'ttl', 'lru_skip', 'req_max_entries'}
  local cur = rcall('HMGET', M, lunpack(fields))
  if not cur[1] then
    if ARGV[#ARGV] ~= 'create' then return false end
    local kv = {}
    for i = 2, #ARGV - 1 do kv[#kv + 1] = ARGV[i] end
    rcall('HSET', M, lunpack(kv))
    cur = rcall('HMGET', M, lunpack(fields))
  end
  return cur
end

-- The settings of the maps seen, by meta key: {id, vk, ttl, max_size, max_entries, sk}.
-- They never change while the map exists (only frozen does, read on every call), and
-- an unlinked map made anew has another id, so an entry whose id matches is current.
-- It saves reading five fields on every call; emptied when it grows large (maps made
-- and unlinked by the million must not grow the server's memory).
local cache, cached = {}, 0

-- Sets the call's keys and the map's settings; an error reply when the map is gone
-- (unlinked, or unlinked and made anew: another id), frozen (for a mutator) or without
-- the TTL an operation needs.
--
-- A mutator first reads the write token `w` alone: equal to the caller's id, the map is
-- this one (not unlinked nor made anew) and not frozen, since `w` is written with `id`
-- when the map is made and deleted by freeze, which is one-way. One HGET of a string
-- instead of the HMGET of two fields (a reply table): ~4k of the ~40k instructions the
-- server spends on a put. Anything else (no token: frozen, gone, or a map made before
-- tokens existed) takes the full check.
local function begin(keys, args, write)
  if not rcall then init() end
  ARGV = args
  M = keys[1]
  now = nil
  local id
  if write and rcall('HGET', M, 'w') == args[1] then
    id, frozen = args[1], false
  else
    local g = rcall('HMGET', M, 'id', 'frozen')
    if g[1] ~= args[1] then return rerr('HMS gone') end
    id, frozen = g[1], g[2] == '1'
  end
  local c = cache[M]
  if not c or c[1] ~= id then
    local m = rcall('HMGET', M, 'vk', 'ttl', 'max_size', 'max_entries', 'sk')
    local base = ssub(M, 1, -2)
    c = {id, m[1], tonum(m[2]), tonum(m[3]), tonum(m[4]), m[5] == '1',
      base .. 'x', base .. 'l', base .. 'a', base .. 'u',
      tonum(m[2]) == 0 and tonum(m[3]) == 0, base .. 'd'}
    if cached >= 10000 then cache, cached = {}, 0 end
    if not cache[M] then cached = cached + 1 end
    cache[M] = c
  end
  vk, ttl, max_size, max_entries, strkey = c[2], c[3], c[4], c[5], c[6]
  -- D's name comes from M, as the others' do (it is declared only where Redis Cluster
  -- needs it: remote/mod.rs, declared).
  D = c[12]
  X, L, A, U = c[7], c[8], c[9], c[10]
  ttl_on, lru_on = ttl > 0, max_size > 0
  -- Mutators are refused on frozen maps, before the TTL check (api.md 7.9).
  if frozen and write then return rerr('HMS frozen') end
  if args[#args] == 'needttl' and not ttl_on then return rerr('HMS nottl') end
  return nil
end

-- Fast paths: a put or incr of a key without the UTF-8 flag on a plain map (no TTL, no
-- LRU), what counters and stores do most, in as few server steps as the checks allow.
-- The call carries only id, k and the value (the caller leaves out the rest for such a
-- key: #args == 3). The map must be in the cache under this id (its settings, and that
-- it is plain) and its write token must be the id: then it is this map, live and not
-- frozen, exactly as begin would find. Anything else takes the general way (`general`:
-- begin, then the op), so each fast path only repeats its op's plain branch.

-- The cached settings of a plain map that this bare call may write, or nil.
local function writable_plain(keys, args)
  if #args ~= 3 then return nil end
  local m, id = keys[1], args[1]
  local c = cache[m]
  if c and c[11] and c[1] == id and rcall('HGET', m, 'w') == id then return c end
  return nil
end

local fast = {}

fast.put = function(general)  -- id, k, v: as ops.put's plain branch
  return function(keys, args)
    if not rcall then init() end
    local c = writable_plain(keys, args)
    if not c then return general(keys, args) end
    local d, k = c[12], args[2]
    if rcall('HSET', d, k, args[3]) == 1 and rcall('HLEN', d) > c[5] then
      rcall('HDEL', d, k)
      return 0
    end
    return 1
  end
end

-- id, k, delta: as ops.incr's plain branch, except that a result that wraps is
-- answered "HMS wrap": wrapping needs the delta with its top bit flipped, which only
-- the full call carries, so the caller sends that (remote/mod.rs, incr_by). Nothing is
-- changed by the refused call, so the full one is a fresh, whole increment.
fast.incr = function(general)
  return function(keys, args)
    if not rcall then init() end
    local c = writable_plain(keys, args)
    if not c then return general(keys, args) end
    local r = plain_incr(c[12], args[2], args[3], c[2], c[5])
    if r == nil then return rerr('HMS wrap') end
    return r
  end
end

-- The ops allowed on a frozen map (the others are mutators).
local R = {get = true, getx = true, ttl = true, exists = true, mget = true, scan = true,
  all = true, stats = true, unlink = true, seek = true, verify = true}

-- What Redis must allow each op (lua/map.lua's header): 'r' no-writes, 'm' allow-oom,
-- 'w' the default. get, getx and mget mark entries on LRU maps: they have an 'm'
-- function too (hms_@V@_get_m ...), the caller picks.
local KIND = {get = 'r', getx = 'r', mget = 'r', ttl = 'r', exists = 'r', scan = 'r', all = 'r',
  seek = 'r', verify = 'r', stats = 'r', remove = 'm', take = 'm', mdel = 'm', cast = 'm',
  clear = 'm', unlink = 'm', flush = 'm', pop = 'm', drain = 'm', persist = 'm', freeze = 'm'}
local FLAGS = {r = {'no-writes'}, m = {'allow-oom'}, w = {}}

local function register(name, op, kind)
  local f, write = ops[op], not R[op]
  local function general(keys, args)
    local e = begin(keys, args, write)
    if e then return e end
    return f()
  end
  redis.register_function{function_name = name, flags = FLAGS[kind], callback = fast[op] and fast[op](general) or general}
end

-- (Loading runs with only the redis API as globals: no pairs(), hence the list.)
local ALL = {'get', 'getx', 'ttl', 'exists', 'mget', 'scan', 'all', 'seek', 'verify', 'stats',
  'unlink', 'put', 'mset', 'add', 'update', 'swap', 'take', 'remove', 'mdel', 'gos', 'cas',
  'cast', 'incr', 'max', 'min', 'touch', 'persist', 'setttl', 'flush', 'pop', 'drain', 'clear',
  'reserve', 'freeze'}
for i = 1, #ALL do
  local op = ALL[i]
  register('hms_@V@_' .. op, op, KIND[op] or 'w')
end
register('hms_@V@_get_m', 'get', 'm')
register('hms_@V@_getx_m', 'getx', 'm')
register('hms_@V@_mget_m', 'mget', 'm')
-- open: 'create' may write the meta hash; 'attach' only reads.
redis.register_function{function_name = 'hms_@V@_open', callback = function(keys, args)
  if not rcall then init() end
  ARGV, M = args, keys[1]
  return ops.open()
end}
redis.register_function{function_name = 'hms_@V@_open_r', flags = {'no-writes'}, callback = function(keys, args)
  if not rcall then init() end
  ARGV, M = args, keys[1]
  return ops.open()
end}
