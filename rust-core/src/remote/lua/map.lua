-- hashmap-shared: every operation on one shard of a map, atomically (remote/mod.rs sends
-- it with EVALSHA; remote/model.rs documents the keys and encodings).
--
-- KEYS: M meta hash, D data hash, then those of X expiry zset (whole seconds of the
--       server's TIME), L LRU zset (score: promotion clock, head = highest), A accessed
--       set (second chance), U set of string keys stored with Perl's UTF-8 flag, that
--       the map uses (declared for Redis Cluster); their names are M's with another
--       last letter.
-- ARGV: op, map id (the routing seed: a map unlinked and made anew meanwhile is
--       "gone"), then the operation's arguments.
--
-- Numbers: 64-bit values never pass through a Lua number (a double): int values are
-- stored and returned as canonical decimal strings, compared as strings (icmp) and
-- added with HINCRBY (exact int64); only 16/32-bit values, expiries and clocks
-- (all below 2^53) are Lua numbers.
local M, D = KEYS[1], KEYS[2]
local base = string.sub(M, 1, -2)
local X, L, A, U = base .. 'x', base .. 'l', base .. 'a', base .. 'u'
local op = ARGV[1]

if op == 'open' then
  -- ARGV: open, id, then field/value pairs to create the meta hash with, then
  -- 'create' or 'attach' last. Returns the meta as stored (false: absent and not made).
  local fields = {'version', 'variant', 'index', 'count', 'id', 'frozen', 'max_entries',
    'max_size', 'ttl', 'lru_skip', 'req_max_entries'}
  local cur = redis.call('HMGET', M, unpack(fields))
  if not cur[1] then
    if ARGV[#ARGV] ~= 'create' then return false end
    local kv = {}
    for i = 3, #ARGV - 1 do kv[#kv + 1] = ARGV[i] end
    redis.call('HSET', M, unpack(kv))
    cur = redis.call('HMGET', M, unpack(fields))
  end
  return cur
end

local meta = redis.call('HMGET', M, 'id', 'frozen', 'vk', 'ttl', 'max_size', 'max_entries', 'sk')
if meta[1] ~= ARGV[2] then return redis.error_reply('HMS gone') end
local frozen = meta[2] == '1'
local vk = meta[3]
local ttl = tonumber(meta[4])
local max_size = tonumber(meta[5])
local max_entries = tonumber(meta[6])
local strkey = meta[7] == '1'
local ttl_on, lru_on = ttl > 0, max_size > 0

local now
local function clock()
  if not now then now = tonumber(redis.call('TIME')[1]) end
  return now
end

-- Has live-or-expired entry k expired? (Permanent entries have no score.)
local function expired(k)
  if not ttl_on then return false end
  local e = redis.call('ZSCORE', X, k)
  return e and tonumber(e) <= clock()
end

local function unlink_entry(k)
  redis.call('HDEL', D, k)
  if ttl_on then redis.call('ZREM', X, k) end
  if lru_on then redis.call('ZREM', L, k); redis.call('SREM', A, k) end
  if strkey then redis.call('SREM', U, k) end
end

local function reclaim(k)
  unlink_entry(k)
  redis.call('HINCRBY', M, 'expired', 1)
end

-- The value of k if it is live; an expired entry is reclaimed (counted): false.
local function live(k)
  local v = redis.call('HGET', D, k)
  if v and expired(k) then reclaim(k); return false end
  return v
end

local function tick() return redis.call('HINCRBY', M, 'clock', 1) end

-- LRU promotion (lru.rs promote): the head stays; a skipped promotion ('0', decided by
-- the caller's lru_skip sequence) does nothing unless k is the tail.
local function promote(k, flag)
  if redis.call('ZRANGE', L, -1, -1)[1] == k then return end
  if flag == '0' and redis.call('ZRANGE', L, 0, 0)[1] ~= k then return end
  redis.call('ZADD', L, tick(), k)
  redis.call('SREM', A, k)
end

-- Expiry of an existing entry: 'd' resets a non-permanent one to now + default, 's'
-- sets it from secs (0: permanent).
local function set_exp(k, mode, secs)
  if not ttl_on then return end
  if mode == 'd' then
    if redis.call('ZSCORE', X, k) then redis.call('ZADD', X, clock() + ttl, k) end
  else
    local s = tonumber(secs)
    if s == 0 then redis.call('ZREM', X, k) else redis.call('ZADD', X, clock() + s, k) end
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
    local v = redis.call('ZRANGE', L, 0, 0)[1]
    if not v then return end
    if steps < 100000 and redis.call('SREM', A, v) == 1 then
      redis.call('ZADD', L, tick(), v)
      steps = steps + 1
    else
      local ex = expired(v)
      unlink_entry(v)
      redis.call('HINCRBY', M, ex and 'expired' or 'evictions', 1)
      return
    end
  end
end

-- Inserts absent k (map.rs insert_new): evict first on an LRU map at max_size; false
-- when the map holds max_entries already.
local function insert(k, v, kf, mode, secs)
  if lru_on and redis.call('HLEN', D) >= max_size then evict_one() end
  if redis.call('HLEN', D) >= max_entries then return false end
  redis.call('HSET', D, k, v)
  if strkey and kf == '1' then redis.call('SADD', U, k) end
  if lru_on then redis.call('ZADD', L, tick(), k) end
  if ttl_on then
    local s = ttl
    if mode == 's' then s = tonumber(secs) end
    if s > 0 then redis.call('ZADD', X, clock() + s, k) end
  end
  return true
end

-- Compares canonical decimal integers exactly (-1, 0, 1), as strings.
local function icmp(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na and -1 or 1 end
  if a == b then return 0 end
  local r
  if #a ~= #b then r = (#a < #b) and -1 or 1 else r = (a < b) and -1 or 1 end
  if na then r = -r end
  return r
end

-- Does stored value v equal expected e? (strings: bytes only, the flag byte skipped)
local function veq(v, e)
  if vk == 's' then return string.sub(v, 2) == e end
  return v == e
end

local function kflag(k)
  if strkey and redis.call('SISMEMBER', U, k) == 1 then return 1 end
  return 0
end

-- Removes and returns one entry from an end (map.rs take_end): LRU maps: the tail
-- ('t', pop) or the head ('h', shift); others: the first entry a hash scan meets.
-- Expired entries met are reclaimed and skipped.
local function take_end(e)
  while true do
    local k
    if lru_on then
      if e == 'h' then k = redis.call('ZRANGE', L, -1, -1)[1] else k = redis.call('ZRANGE', L, 0, 0)[1] end
    else
      local c = '0'
      repeat
        local r = redis.call('HSCAN', D, c, 'COUNT', 16)
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
      local v = redis.call('HGET', D, k)
      local f = kflag(k)
      unlink_entry(k)
      return {k, v, f}
    end
  end
end

-- Mutators are refused on frozen maps, before the TTL check (api.md 7.9).
local reads = {get = true, getx = true, ttl = true, exists = true, mget = true, scan = true,
  all = true, stats = true, unlink = true, seek = true, verify = true}

if frozen and not reads[op] then return redis.error_reply('HMS frozen') end
if ARGV[#ARGV] == 'needttl' and not ttl_on then return redis.error_reply('HMS nottl') end

-- The operation: one branch per op (no table of closures built on every call).

-- Reads ------------------------------------------------------------------------------

if op == 'get' then  -- k, mark ('1': LRU accessed mark)
  local k = ARGV[3]
  local v = redis.call('HGET', D, k)
  if not v or expired(k) then return false end
  if lru_on and ARGV[4] == '1' and not frozen then redis.pcall('SADD', A, k) end
  return v
end

if op == 'getx' then  -- k, mark: {value, seconds left (0 permanent, -1 no TTL)}
  local k = ARGV[3]
  local v = redis.call('HGET', D, k)
  if not v or expired(k) then return false end
  if lru_on and ARGV[4] == '1' and not frozen then redis.pcall('SADD', A, k) end
  if not ttl_on then return {v, -1} end
  local e = redis.call('ZSCORE', X, k)
  if not e then return {v, 0} end
  return {v, tonumber(e) - clock()}
end

if op == 'ttl' then  -- k: seconds left, 0 permanent, false missing/expired
  local k = ARGV[3]
  if redis.call('HEXISTS', D, k) == 0 then return false end
  local e = redis.call('ZSCORE', X, k)
  if not e then return 0 end
  e = tonumber(e) - clock()
  if e <= 0 then return false end
  return e
end

if op == 'exists' then
  local k = ARGV[3]
  if redis.call('HEXISTS', D, k) == 0 or expired(k) then return 0 end
  return 1
end

if op == 'mget' then  -- mark, keys...: one value (or false) per key
  local out = {}
  local mark = lru_on and ARGV[3] == '1' and not frozen
  for i = 4, #ARGV do
    local k = ARGV[i]
    local v = redis.call('HGET', D, k)
    if v and expired(k) then v = false end
    if v and mark then redis.pcall('SADD', A, k) end
    out[#out + 1] = v
  end
  return out
end

-- Live entries as {k, v, kflag, ...}: a scan step ({next cursor, entries...}) or,
-- when the shard holds at most `limit` entries, all of them (false otherwise).
if op == 'scan' then  -- cursor, count
  local r = redis.call('HSCAN', D, ARGV[3], 'COUNT', tonumber(ARGV[4]))
  local out = {r[1]}
  local kv = r[2]
  for i = 1, #kv, 2 do
    if not expired(kv[i]) then
      out[#out + 1] = kv[i]; out[#out + 1] = kv[i + 1]; out[#out + 1] = kflag(kv[i])
    end
  end
  return out
end

if op == 'all' then  -- limit
  if redis.call('HLEN', D) > tonumber(ARGV[3]) then return false end
  local kv = redis.call('HGETALL', D)
  local out = {}
  for i = 1, #kv, 2 do
    if not expired(kv[i]) then
      out[#out + 1] = kv[i]; out[#out + 1] = kv[i + 1]; out[#out + 1] = kflag(kv[i])
    end
  end
  return out
end

if op == 'seek' then  -- k: {value, kflag} of a live entry, or false
  local k = ARGV[3]
  local v = redis.call('HGET', D, k)
  if not v or expired(k) then return false end
  return {v, kflag(k)}
end

-- Inconsistencies between the shard's keys (a diagnostic: walks everything).
if op == 'verify' then
  local out = {}
  local function each_member(key, kind, what)
    local ms
    if kind == 'z' then ms = redis.call('ZRANGE', key, 0, -1) else ms = redis.call('SMEMBERS', key) end
    for i = 1, #ms do
      if redis.call('HEXISTS', D, ms[i]) == 0 then
        out[#out + 1] = what .. ' lists a key that is not in the map: ' .. ms[i]
        if #out > 100 then return end
      end
    end
  end
  if ttl_on then each_member(X, 'z', 'expiry index') end
  if lru_on then
    each_member(L, 'z', 'LRU list'); each_member(A, 's', 'accessed set')
    local n, l = redis.call('HLEN', D), redis.call('ZCARD', L)
    if n ~= l then out[#out + 1] = 'LRU list holds ' .. l .. ' keys, the map ' .. n end
  end
  if strkey then each_member(U, 's', 'UTF-8 key set') end
  return out
end

if op == 'stats' then
  local s = redis.call('HMGET', M, 'evictions', 'expired')
  return {redis.call('HLEN', D), tonumber(s[1] or 0), tonumber(s[2] or 0), frozen and 1 or 0}
end

if op == 'unlink' then
  return redis.call('DEL', M, D, X, L, A, U) > 0 and 1 or 0
end

-- Writes (refused on frozen maps) ----------------------------------------------------

if op == 'put' then  -- k, v, kf, mode, secs, flag
  local k = ARGV[3]
  if redis.call('HEXISTS', D, k) == 1 then
    -- A hit, expired or not: put revives.
    redis.call('HSET', D, k, ARGV[4])
    hit(k, ARGV[6], ARGV[7], ARGV[8])
    return 1
  end
  return insert(k, ARGV[4], ARGV[5], ARGV[6], ARGV[7]) and 1 or 0
end

if op == 'mset' then  -- flag, then k, v, kf triples: how many were stored
  local n = 0
  for i = 4, #ARGV, 3 do
    local k = ARGV[i]
    if redis.call('HEXISTS', D, k) == 1 then
      redis.call('HSET', D, k, ARGV[i + 1])
      hit(k, 'd', 0, ARGV[3])
      n = n + 1
    elseif insert(k, ARGV[i + 1], ARGV[i + 2], 'd', 0) then
      n = n + 1
    end
  end
  return n
end

if op == 'add' then  -- k, v, kf, mode, secs
  if live(ARGV[3]) then return 0 end
  return insert(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]) and 1 or 0
end

if op == 'update' then  -- k, v, mode, secs, flag
  local k = ARGV[3]
  if not live(k) then return 0 end
  redis.call('HSET', D, k, ARGV[4])
  hit(k, ARGV[5], ARGV[6], ARGV[7])
  return 1
end

if op == 'swap' then  -- k, v, kf, flag: the old value, or false
  local k = ARGV[3]
  local cur = live(k)
  if cur then
    redis.call('HSET', D, k, ARGV[4])
    hit(k, 'd', 0, ARGV[6])
    return cur
  end
  insert(k, ARGV[4], ARGV[5], 'd', 0)
  return false
end

if op == 'take' then  -- k
  local k = ARGV[3]
  local cur = live(k)
  if cur then unlink_entry(k) end
  return cur
end

if op == 'remove' then  -- k (expired or not, not counted)
  local k = ARGV[3]
  if redis.call('HEXISTS', D, k) == 0 then return 0 end
  unlink_entry(k)
  return 1
end

if op == 'mdel' then  -- keys...
  local n = 0
  for i = 3, #ARGV do
    local k = ARGV[i]
    if redis.call('HEXISTS', D, k) == 1 then unlink_entry(k); n = n + 1 end
  end
  return n
end

if op == 'gos' then  -- k, v, kf, flag (get_or_set)
  local k = ARGV[3]
  local cur = live(k)
  if cur then hit(k, 'd', 0, ARGV[6]); return cur end
  if insert(k, ARGV[4], ARGV[5], 'd', 0) then return ARGV[4] end
  return false
end

if op == 'cas' then  -- k, expected (bytes or decimal), desired (stored form), flag
  local k = ARGV[3]
  local cur = live(k)
  if not cur or not veq(cur, ARGV[4]) then return 0 end
  redis.call('HSET', D, k, ARGV[5])
  hit(k, 'd', 0, ARGV[6])
  return 1
end

if op == 'cast' then  -- k, expected (cas_take)
  local k = ARGV[3]
  local cur = live(k)
  if not cur or not veq(cur, ARGV[4]) then return false end
  unlink_entry(k)
  return cur
end

if op == 'incr' then  -- k, delta, delta with its top bit flipped, kf, flag
  local k, d = ARGV[3], ARGV[4]
  local cur = live(k)
  if not cur then
    if not insert(k, d, ARGV[6], 'd', 0) then return redis.error_reply('HMS full') end
    return d
  end
  local r
  if vk == 'i64' then
    local ok = redis.pcall('HINCRBY', D, k, d)
    if type(ok) == 'table' and ok.err then
      if not string.find(ok.err, 'overflow', 1, true) then return ok end
      -- Two's-complement wrap in exact int64 steps (w = delta xor 2^63, from the caller):
      -- up: cur - 2^63 + (delta - 2^63); down: cur + (2^63 - 1) + (delta + 2^63) + 1.
      if string.sub(d, 1, 1) == '-' then
        redis.call('HINCRBY', D, k, '9223372036854775807')
        redis.call('HINCRBY', D, k, ARGV[5])
        redis.call('HINCRBY', D, k, 1)
      else
        redis.call('HINCRBY', D, k, '-9223372036854775808')
        redis.call('HINCRBY', D, k, ARGV[5])
      end
    end
    r = redis.call('HGET', D, k)
  else
    local bits = 65536
    if vk == 'i32' then bits = 4294967296 end
    local n = tonumber(cur) + tonumber(d)
    n = (n + bits / 2) % bits - bits / 2
    r = string.format('%d', n)
    redis.call('HSET', D, k, r)
  end
  hit(k, 'd', 0, ARGV[7])
  return r
end

local function bound(better)  -- k, v, kf, flag
  local k, v = ARGV[3], ARGV[4]
  local cur = live(k)
  if not cur then
    if not insert(k, v, ARGV[5], 'd', 0) then return redis.error_reply('HMS full') end
    return v
  end
  if better(icmp(v, cur)) then
    redis.call('HSET', D, k, v)
    cur = v
  end
  hit(k, 'd', 0, ARGV[6])
  return cur
end
if op == 'max' then return bound(function(c) return c > 0 end) end
if op == 'min' then return bound(function(c) return c < 0 end) end

if op == 'touch' then  -- k, flag
  if not (ttl_on or lru_on) then return 0 end
  local k = ARGV[3]
  if not live(k) then return 0 end
  hit(k, 'd', 0, ARGV[4])
  return 1
end

if op == 'persist' then  -- k
  if not ttl_on then return 0 end
  local k = ARGV[3]
  if not live(k) then return 0 end
  redis.call('ZREM', X, k)
  return 1
end

if op == 'setttl' then  -- k, secs
  if not ttl_on then return 0 end
  local k = ARGV[3]
  if not live(k) then return 0 end
  set_exp(k, 's', ARGV[4])
  return 1
end

if op == 'flush' then  -- limit: {removed, 1 when no expired entry is left}
  if not ttl_on then return {0, 1} end
  local lim = tonumber(ARGV[3])
  local due = redis.call('ZRANGEBYSCORE', X, '-inf', clock(), 'LIMIT', 0, lim)
  for i = 1, #due do reclaim(due[i]) end
  local done = 1
  if #due == lim and redis.call('ZCOUNT', X, '-inf', clock()) > 0 then done = 0 end
  return {#due, done}
end

if op == 'pop' then  -- end ('t' pop, 'h' shift): {k, v, kflag} or false
  return take_end(ARGV[3])
end

if op == 'drain' then  -- n: {k, v, kflag, ...} in pop order, n clamped to the size
  local n = math.min(tonumber(ARGV[3]), redis.call('HLEN', D))
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

if op == 'clear' then
  redis.call('UNLINK', D, X, L, A, U)
  redis.call('HINCRBY', M, 'gen', 1)
  return 1
end

if op == 'reserve' then return 1 end

if op == 'freeze' then
  redis.call('HSET', M, 'frozen', '1')
  return 1
end


return redis.error_reply('HMS unknown op ' .. tostring(op))
