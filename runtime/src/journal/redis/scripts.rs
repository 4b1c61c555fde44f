//! The Redis journal's Lua scripts, one per write, each atomic on the server, and the helpers
//! that call them. The key layout they rely on is described in the module above. Scripts
//! get the prefix in ARGV[1] where they compute key names (owner sets, other sessions).

use std::sync::LazyLock;

use redis::{Cmd, Script};

/// The hash fields every script and read returns, in this order (see `record_from`).
pub(super) const FIELDS: [&str; 6] = ["record", "status", "owner", "lease", "last_seq", "usage"];

/// The Lua scripts; each write is one script, so it is atomic on the server. Scripts get the
/// prefix in ARGV[1] where they compute key names (owner sets, other sessions).
pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) append: Script,
    pub(super) finish: Script,
    pub(super) release: Script,
    pub(super) claim: Script,
    pub(super) heartbeat: Script,
}

impl Scripts {
    pub(super) fn all(&self) -> [&Script; 6] {
        [
            &self.create,
            &self.append,
            &self.finish,
            &self.release,
            &self.claim,
            &self.heartbeat,
        ]
    }
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    // KEYS: session hash, leases, idempotency key. ARGV: prefix, id, record JSON, status,
    // owner ('' = none), lease ('' = none), usage JSON, lease score, has idempotency key.
    // Returns {0} created, {1, existing id, fields} for a known key, {2} id already taken.
    create: Script::new(
        r"
        local fields = {'record', 'status', 'owner', 'lease', 'last_seq', 'usage'}
        if ARGV[9] == '1' then
            local existing = redis.call('GET', KEYS[3])
            if existing then
                local key = ARGV[1] .. ':s:' .. existing
                return {1, existing, redis.call('HMGET', key, unpack(fields))}
            end
        end
        if redis.call('EXISTS', KEYS[1]) == 1 then return {2} end
        if ARGV[9] == '1' then redis.call('SET', KEYS[3], ARGV[2]) end
        redis.call('HSET', KEYS[1], 'record', ARGV[3], 'status', ARGV[4], 'last_seq', '0',
                   'usage', ARGV[7])
        if ARGV[5] ~= '' then
            redis.call('HSET', KEYS[1], 'owner', ARGV[5])
            redis.call('SADD', ARGV[1] .. ':owner:' .. ARGV[5], ARGV[2])
        end
        if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'lease', ARGV[6]) end
        if ARGV[4] == 'running' then redis.call('ZADD', KEYS[2], ARGV[8], ARGV[2]) end
        return {0}
        ",
    ),
    // KEYS: stream, session hash. ARGV: seq, kind, data.
    // Returns 0 appended, -1 unknown session, or the seq that was expected.
    // Only this script writes streams, from seq 1 without gaps, and nothing trims them, so
    // XLEN is the last seq: O(1), cheaper than reading the last entry back. XADD's own
    // "ID must exceed the top" check stays as a second fence.
    append: Script::new(
        r"
        local expected = redis.call('XLEN', KEYS[1]) + 1
        if expected == 1 and redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
        if tonumber(ARGV[1]) ~= expected then return expected end
        redis.call('XADD', KEYS[1], ARGV[1] .. '-1', 'k', ARGV[2], 'd', ARGV[3])
        return 0
        ",
    ),
    // KEYS: session hash, leases. ARGV: prefix, id, status, usage JSON, last seq.
    // Returns 0, or -1 for an unknown session.
    finish: Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
        local owner = redis.call('HGET', KEYS[1], 'owner')
        if owner then redis.call('SREM', ARGV[1] .. ':owner:' .. owner, ARGV[2]) end
        redis.call('HSET', KEYS[1], 'status', ARGV[3], 'usage', ARGV[4], 'last_seq', ARGV[5])
        redis.call('HDEL', KEYS[1], 'owner', 'lease')
        if ARGV[3] == 'running' then
            redis.call('ZADD', KEYS[2], '-inf', ARGV[2])
        else
            redis.call('ZREM', KEYS[2], ARGV[2])
        end
        return 0
        ",
    ),
    // KEYS: session hash, leases. ARGV: prefix, id. Unknown sessions are left alone.
    release: Script::new(
        r"
        local f = redis.call('HMGET', KEYS[1], 'status', 'owner')
        if not f[1] then return 0 end
        if f[2] then redis.call('SREM', ARGV[1] .. ':owner:' .. f[2], ARGV[2]) end
        redis.call('HDEL', KEYS[1], 'owner', 'lease')
        if f[1] == 'running' then redis.call('ZADD', KEYS[2], '-inf', ARGV[2]) end
        return 0
        ",
    ),
    // KEYS: session hash, leases. ARGV: prefix, id, owner, now ms, expires ms.
    // Returns nil (not claimable) or {previous owner or nil, fields}.
    claim: Script::new(
        r"
        local f = redis.call('HMGET', KEYS[1], 'status', 'owner', 'lease')
        if f[1] ~= 'running' then return false end
        local previous = f[2]
        if previous and not (f[3] and tonumber(f[3]) < tonumber(ARGV[4])) then
            return false
        end
        if previous then redis.call('SREM', ARGV[1] .. ':owner:' .. previous, ARGV[2]) end
        redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'lease', ARGV[5])
        redis.call('SADD', ARGV[1] .. ':owner:' .. ARGV[3], ARGV[2])
        redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
        local fields = {'record', 'status', 'owner', 'lease', 'last_seq', 'usage'}
        return {previous, redis.call('HMGET', KEYS[1], unpack(fields))}
        ",
    ),
    // KEYS: owner set, leases. ARGV: prefix, owner, expires ms. Returns how many.
    heartbeat: Script::new(
        r"
        local n = 0
        for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
            local key = ARGV[1] .. ':s:' .. id
            local f = redis.call('HMGET', key, 'status', 'owner')
            if f[1] == 'running' and f[2] == ARGV[2] then
                redis.call('HSET', key, 'lease', ARGV[3])
                redis.call('ZADD', KEYS[2], ARGV[3], id)
                n = n + 1
            else
                redis.call('SREM', KEYS[1], id)
            end
        end
        return n
        ",
    ),
});

/// `EVALSHA` of `script`; the writer falls back to loading it on `NOSCRIPT`.
pub(super) fn evalsha(script: &Script, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

/// The `leases` score of a running session: `-inf` released, `+inf` owned without a lease.
pub(super) fn lease_score(owner: Option<&str>, lease: Option<i64>) -> String {
    match (owner, lease) {
        (None, _) => "-inf".into(),
        (Some(_), None) => "+inf".into(),
        (Some(_), Some(ms)) => ms.to_string(),
    }
}
