/* Allocation counter: wraps CPython's RAW, MEM and OBJ allocator domains while a region is measured.
 *
 * tracemalloc keeps only live blocks and walks the Python stack on every allocation.  This hook keeps what the
 * budgets need and nothing more: the number of allocation calls, the bytes they requested, and, through a table
 * of the blocks allocated since start, the bytes still alive and their peak.  It always calls the allocator it
 * replaced, so it composes with tracemalloc and with other hooks, provided they are removed in reverse order.  To
 * explain a failure, a window can also sample the source lines that allocate (see "sampling" below); a measured
 * window never does.
 *
 * What counts (the definitions the documentation repeats):
 *   - malloc and calloc calls that succeed: one allocation each, their requested size in "allocated";
 *   - a realloc that grows a block, moves it, or resizes a block allocated before start: one allocation, its
 *     new size in "allocated"; a realloc that shrinks in place is not an allocation but updates live bytes;
 *   - frees are not counted; they lower live bytes when the block was allocated since start;
 *   - an OBJ or MEM call that the allocator below passes on to the RAW domain (pymalloc does this for blocks over
 *     512 bytes) is counted once, in the domain the program called.
 * By default only the thread that called start() is counted; frees are honoured from every thread.  Interpreters
 * make no difference: the hooks are process-wide, every interpreter calls them, and a thread counts by the same rule
 * whichever interpreter it is running in.
 *
 * Safety: start() refuses to install twice.  stop() restores the previous allocators only if this hook is still
 * the installed one in every domain; otherwise (someone hooked on top of us, or removed us out of order) it
 * stops counting, leaves the chain alone, keeps its forwarding data alive forever, and raises RuntimeError.
 * No GIL guards the bookkeeping: the RAW domain is called without one, and from 3.12 on an interpreter can have a GIL
 * of its own and run in parallel with the main one, calling the MEM and OBJ domains under that GIL.  So each table
 * sits behind a spinlock of its own.  The choice between that lock and leaving other interpreters' calls out
 * unaccounted was measured (docs/measuring.md): uncontended, the lock cost the hot path nothing that could be told
 * from noise, while telling the calling interpreter took a call into the interpreter on every allocation, up to 8 ns
 * on top of a hook that costs 14 to 22.  An interpreter running in parallel can also read an allocator half-swapped by
 * start() or stop(), so a hook reached with a context that is not its own forwards to the allocator below the set
 * being swapped (see below()).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <windows.h>
#define yield_cpu() SwitchToThread()
#else
#include <sched.h>
#define yield_cpu() sched_yield()
#endif

#if defined(_MSC_VER)
#define THREAD_LOCAL __declspec(thread)
#else
#define THREAD_LOCAL _Thread_local
#endif

/* ------------------------------------------------------------------------------------------------ locks */
/* One for each table, so that a thread in the RAW domain without a GIL never waits for the MEM/OBJ path.  Held only
 * for the bookkeeping of one call, which calls nothing that could come back into a hook. */

static atomic_flag raw_lock = ATOMIC_FLAG_INIT;
static atomic_flag mem_lock = ATOMIC_FLAG_INIT;

static inline void
lock_acquire(atomic_flag *lock)
{
    int spins = 0;
    while (atomic_flag_test_and_set_explicit(lock, memory_order_acquire)) {
        if (++spins > 64) {
            yield_cpu();
            spins = 0;
        }
    }
}

static inline void
lock_release(atomic_flag *lock)
{
    atomic_flag_clear_explicit(lock, memory_order_release);
}

/* ------------------------------------------------------------------------------- tables of live blocks */
/* The size of every block allocated since start(), so that a free can subtract it.  Memory comes from the C
 * library, never from Python.
 *
 * A hash table keyed by address costs a cache miss on nearly every call, because its slots are scattered; that
 * made allocation-heavy code 2 to 4 times slower.  Blocks allocated one after another usually sit side by side,
 * so this is a page table instead: the address space is cut into 1 MiB chunks, each chunk that holds a tracked
 * block gets a leaf array with one 32-bit entry per 8 bytes (0 = no block, else size + 1), found through a small
 * hash of chunk numbers with a one-entry cache.  Neighbouring blocks share cache lines, and a lookup of an
 * untracked block is one read.  Sizes that do not fit in 32 bits go to a short overflow list.
 *
 * Two tables, each behind its own lock: one for the MEM and OBJ domains, one for the RAW domain.  A block is freed
 * through the domain it was allocated in, so it is always found in its own table.
 *
 * Leaves outlive the window that made them.  A window touches a dozen chunks or so, and getting a fresh zeroed
 * 512 KiB leaf from the C library for each (and handing it back at stop) cost about 65 us per window, more than the
 * counting itself on most tests.  So each leaf has a bitmap of the 4 KiB pages of its entries that table_put wrote,
 * and clearing a table zeroes only those pages and keeps the leaf in a pool of the table's, for the next window's
 * chunks; leaves beyond the pool's capacity are freed.  Zeroing with memset was measured against giving the pages
 * back with madvise (docs/performance.md): a window writes a few pages of each leaf, and memset of a page costs
 * less than the system call and the page fault that madvise brings back on the next write. */

#define CHUNK_SHIFT 20
#define GRAIN_SHIFT 3
#define LEAF_ENTRIES ((size_t)1 << (CHUNK_SHIFT - GRAIN_SHIFT))
#define PAGE_SHIFT 10 /* entries per dirty bit: 1024 entries, 4 KiB of a leaf */
#define PAGE_ENTRIES ((size_t)1 << PAGE_SHIFT)
#define LEAF_PAGES (LEAF_ENTRIES >> PAGE_SHIFT)
#define LEAF_WORDS (LEAF_PAGES / 64)
#define POOL_CAPACITY 32   /* kept leaves per table: 16 MiB each at most, beyond the chunks most windows touch */
#define KEPT_REFS 1024     /* a chunk index larger than this (from a window of over 512 chunks) is not kept */
#define BIG UINT32_MAX

typedef struct {
    uint64_t dirty[LEAF_WORDS]; /* the pages of `entries` that may hold a nonzero entry */
    uint32_t entries[LEAF_ENTRIES];
} leaf_t;

typedef struct {
    uintptr_t chunk; /* chunk number + 1; 0 = empty slot */
    leaf_t *leaf;
} leaf_ref_t;

typedef struct {
    uintptr_t ptr;
    size_t size;
} big_t;

typedef struct {
    leaf_ref_t *refs;
    size_t capacity; /* a power of two, or 0 */
    size_t used;
    uintptr_t last_chunk; /* chunk number + 1 of the cached leaf, 0 when none */
    leaf_t *last_leaf;
    big_t *big;
    size_t big_used;
    size_t big_capacity;
    int failed; /* the C library could not give memory: live/peak are no longer exact */
    leaf_t *pool[POOL_CAPACITY]; /* all-zero leaves, kept from earlier windows */
    size_t pooled;
} table_t;

static table_t mem_table;
static table_t raw_table;

static inline size_t
ref_slot(const table_t *t, uintptr_t chunk)
{
    return (size_t)(((uint64_t)chunk * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (t->capacity - 1);
}

static int
refs_grow(table_t *t)
{
    size_t old_capacity = t->capacity;
    leaf_ref_t *old = t->refs;
    size_t new_capacity = old_capacity ? old_capacity * 2 : 64;
    leaf_ref_t *refs = calloc(new_capacity, sizeof(leaf_ref_t));
    if (refs == NULL) {
        return -1;
    }
    t->refs = refs;
    t->capacity = new_capacity;
    for (size_t i = 0; i < old_capacity; i++) {
        if (old[i].chunk) {
            size_t j = ref_slot(t, old[i].chunk);
            while (t->refs[j].chunk) {
                j = (j + 1) & (t->capacity - 1);
            }
            t->refs[j] = old[i];
        }
    }
    free(old);
    return 0;
}

#ifndef NDEBUG
static int
leaf_is_zero(const leaf_t *leaf)
{
    for (size_t w = 0; w < LEAF_WORDS; w++) {
        if (leaf->dirty[w]) {
            return 0;
        }
    }
    for (size_t e = 0; e < LEAF_ENTRIES; e++) {
        if (leaf->entries[e]) {
            return 0;
        }
    }
    return 1;
}
#endif

/* The leaf of ptr's chunk; created when `create` is set.  NULL when there is none (or no memory for it). */
static inline leaf_t *
leaf_of(table_t *t, uintptr_t ptr, int create)
{
    uintptr_t chunk = (ptr >> CHUNK_SHIFT) + 1;
    if (chunk == t->last_chunk) {
        return t->last_leaf;
    }
    if (t->capacity) {
        size_t i = ref_slot(t, chunk);
        while (t->refs[i].chunk) {
            if (t->refs[i].chunk == chunk) {
                t->last_chunk = chunk;
                t->last_leaf = t->refs[i].leaf;
                return t->last_leaf;
            }
            i = (i + 1) & (t->capacity - 1);
        }
    }
    if (!create) {
        return NULL;
    }
    if ((t->used + 1) * 2 > t->capacity && refs_grow(t) < 0) {
        return NULL;
    }
    leaf_t *leaf;
    if (t->pooled) {
        leaf = t->pool[--t->pooled];
        assert(leaf_is_zero(leaf));
    }
    else {
        leaf = calloc(1, sizeof(leaf_t));
        if (leaf == NULL) {
            return NULL;
        }
    }
    size_t i = ref_slot(t, chunk);
    while (t->refs[i].chunk) {
        i = (i + 1) & (t->capacity - 1);
    }
    t->refs[i].chunk = chunk;
    t->refs[i].leaf = leaf;
    t->used++;
    t->last_chunk = chunk;
    t->last_leaf = leaf;
    return leaf;
}

static inline size_t
entry_of(uintptr_t ptr)
{
    return (size_t)((ptr & (((uintptr_t)1 << CHUNK_SHIFT) - 1)) >> GRAIN_SHIFT);
}

static int
big_put(table_t *t, uintptr_t ptr, size_t size)
{
    if (t->big_used == t->big_capacity) {
        size_t capacity = t->big_capacity ? t->big_capacity * 2 : 16;
        big_t *big = realloc(t->big, capacity * sizeof(big_t));
        if (big == NULL) {
            return -1;
        }
        t->big = big;
        t->big_capacity = capacity;
    }
    t->big[t->big_used].ptr = ptr;
    t->big[t->big_used].size = size;
    t->big_used++;
    return 0;
}

static size_t
big_pop(table_t *t, uintptr_t ptr)
{
    for (size_t i = 0; i < t->big_used; i++) {
        if (t->big[i].ptr == ptr) {
            size_t size = t->big[i].size;
            t->big[i] = t->big[--t->big_used];
            return size;
        }
    }
    return 0;
}

/* Records ptr; returns 0, or -1 when it could not be recorded (the table is then marked inexact).  A record already
 * at that address is a block that was freed without the table knowing yet (through another domain, while an
 * allocator was being swapped, or by a realloc in another thread that has not done its bookkeeping yet), since the
 * allocator has just handed the address out again: it is dropped and its size put in *stale, so that live bytes stay
 * equal to the sum of the table's records and can never wrap. */
static int
table_put(table_t *t, uintptr_t ptr, size_t size, size_t *stale)
{
    leaf_t *leaf = leaf_of(t, ptr, 1);
    if (leaf == NULL) {
        t->failed = 1;
        return -1;
    }
    size_t e = entry_of(ptr);
    uint32_t *entry = &leaf->entries[e];
    if (*entry) {
        *stale = *entry == BIG ? big_pop(t, ptr) : (size_t)*entry - 1;
        *entry = 0;
    }
    if (size >= (size_t)BIG - 1) {
        if (big_put(t, ptr, size) < 0) {
            t->failed = 1;
            return -1;
        }
        *entry = BIG;
    }
    else {
        *entry = (uint32_t)size + 1;
    }
    /* The only write of a nonzero entry (table_pop only zeroes), so the pages marked here are all that clearing
     * has to zero. */
    leaf->dirty[e >> (PAGE_SHIFT + 6)] |= (uint64_t)1 << ((e >> PAGE_SHIFT) & 63);
    return 0;
}

/* Removes ptr; returns 1 and its size when it was there. */
static inline int
table_pop(table_t *t, uintptr_t ptr, size_t *size)
{
    leaf_t *leaf = leaf_of(t, ptr, 0);
    if (leaf == NULL) {
        return 0;
    }
    size_t e = entry_of(ptr);
    uint32_t value = leaf->entries[e];
    if (!value) {
        return 0;
    }
    leaf->entries[e] = 0;
    *size = value == BIG ? big_pop(t, ptr) : (size_t)value - 1;
    return 1;
}

/* Zeroes the pages of `leaf` that table_put wrote, runs of them in one memset, and keeps it in the pool; frees it when
 * the pool is full. */
static void
leaf_release(table_t *t, leaf_t *leaf)
{
    if (t->pooled == POOL_CAPACITY) {
        free(leaf);
        return;
    }
    size_t run = 0; /* the first page of the current run of dirty pages */
    for (size_t page = 0; page <= LEAF_PAGES; page++) {
        int dirty = page < LEAF_PAGES && (leaf->dirty[page >> 6] >> (page & 63)) & 1;
        if (!dirty) {
            if (run < page) {
                memset(&leaf->entries[run * PAGE_ENTRIES], 0, (page - run) * PAGE_ENTRIES * sizeof(uint32_t));
            }
            run = page + 1;
        }
    }
    memset(leaf->dirty, 0, sizeof(leaf->dirty));
    t->pool[t->pooled++] = leaf;
}

/* Forgets every record, as a table that was never used, but keeps zeroed leaves (up to the pool's capacity), the
 * chunk index and the overflow list's memory for the next window. */
static void
table_clear(table_t *t)
{
    for (size_t i = 0; i < t->capacity; i++) {
        if (t->refs[i].leaf != NULL) {
            leaf_release(t, t->refs[i].leaf);
        }
    }
    if (t->capacity > KEPT_REFS) {
        free(t->refs);
        t->refs = NULL;
        t->capacity = 0;
    }
    else if (t->capacity) {
        memset(t->refs, 0, t->capacity * sizeof(leaf_ref_t));
    }
    t->used = 0;
    t->last_chunk = 0;
    t->last_leaf = NULL;
    t->big_used = 0;
    t->failed = 0;
}

/* ------------------------------------------------------------------------------------------- counters */
/* Each tally has one writer at a time (the holder of its table's lock), so updates are a relaxed load and store, no
 * locked instruction; they are atomics only so that readers in other threads see whole values. */

typedef struct {
    atomic_ullong allocations;
    atomic_ullong allocated;
    atomic_ullong live;
} tally_t;

static tally_t mem_tally;
static tally_t raw_tally;
static atomic_ullong peak = 0;

static inline void
add(atomic_ullong *value, unsigned long long amount)
{
    atomic_store_explicit(value, atomic_load_explicit(value, memory_order_relaxed) + amount, memory_order_relaxed);
}

static inline void
sub(atomic_ullong *value, unsigned long long amount)
{
    atomic_store_explicit(value, atomic_load_explicit(value, memory_order_relaxed) - amount, memory_order_relaxed);
}

static inline void
raise_peak(void)
{
    unsigned long long now = atomic_load_explicit(&mem_tally.live, memory_order_relaxed) +
                             atomic_load_explicit(&raw_tally.live, memory_order_relaxed);
    unsigned long long high = atomic_load_explicit(&peak, memory_order_relaxed);
    while (now > high && !atomic_compare_exchange_weak(&peak, &high, now)) {
    }
}

static atomic_int counting = 0;              /* the hook counts only while this is set */
static atomic_int paused = 0;                /* while set, new blocks are not counted; frees still are */
static int all_threads = 0;
static atomic_ullong generation = 0;         /* bumped by every start() */
static THREAD_LOCAL unsigned long long my_generation = 0; /* == generation in the thread that called start() */
static THREAD_LOCAL int in_hook = 0;         /* set while a hook calls down, so RAW does not count again */
static int sampling = 0;                     /* lines are sampled (start(sample_calls=...)); see sample() */
static THREAD_LOCAL int in_sample = 0;       /* set while sample() looks at the stack: what that allocates is its own */

static inline int
counts_new_blocks(void)
{
    return !atomic_load_explicit(&paused, memory_order_relaxed) && !(sampling && in_sample) &&
           (all_threads || my_generation == atomic_load_explicit(&generation, memory_order_relaxed));
}

static void forget_sampled(uintptr_t ptr);

/* The accounting of one call; `raw` selects the RAW table and tally, and the lock that guards them.  Returns 1 when
 * the call was counted as an allocation. */
static inline int
account(int raw, void *old, void *ptr, size_t size, int is_realloc)
{
    int counts = ptr != NULL && counts_new_blocks();
    if (old == NULL && !counts) {
        return 0; /* a block not counted, in a thread not counted: nothing to look up, so no lock to contend for */
    }
    int allocation = 0;
    table_t *table = raw ? &raw_table : &mem_table;
    tally_t *tally = raw ? &raw_tally : &mem_tally;
    atomic_flag *lock = raw ? &raw_lock : &mem_lock;
    lock_acquire(lock);
    size_t old_size = 0;
    int tracked = 0;
    if (old != NULL) {
        tracked = table_pop(table, (uintptr_t)old, &old_size);
        if (tracked) {
            sub(&tally->live, old_size);
            if (sampling) {
                forget_sampled((uintptr_t)old);
            }
        }
    }
    if (ptr != NULL && (counts || tracked)) {
        /* A block the counted thread owns stays tracked whoever resizes it.  A realloc is an allocation when it
         * grows or moves the block, or resizes one allocated before start (its old size is unknown). */
        if (counts && (!is_realloc || !tracked || size > old_size || ptr != old)) {
            add(&tally->allocations, 1);
            add(&tally->allocated, size);
            allocation = 1;
        }
        size_t stale = 0;
        int recorded = table_put(table, (uintptr_t)ptr, size, &stale) == 0;
        sub(&tally->live, stale);
        if (recorded) {
            add(&tally->live, size);
            raise_peak();
        }
    }
    lock_release(lock);
    return allocation;
}

/* ------------------------------------------------------------------------------------------- sampling */
/* Which source lines allocate, for explaining a failure, at a cost that does not grow with the number of lines a
 * test runs.  While sampling, about one allocation call in `sample_calls_mean`, and the call that brings the bytes
 * requested since the last byte sample past about `sample_bytes_mean` (so a block of twice that or more is always
 * seen), looks up the line of the innermost Python frame and charges it the calls and bytes counted since the last
 * sample of each kind: the per-line figures are estimates already scaled up, and their sums are the totals less
 * what came after the last sample.  Each interval is drawn at random around its mean, so that a loop making the
 * same calls in the same order cannot hide a line by always landing the sample on another.
 *
 * A sampled block is remembered until it is freed, with the line and weights it was charged, so that each line also
 * has an estimate of what it holds alive; whenever the live bytes exceed the last capture by 2% plus 1 KiB, those
 * estimates are copied as the lines nearest the peak.
 *
 * Looking at the stack needs the GIL, which the MEM and OBJ domains hold and the RAW domain may not: a RAW call adds
 * to the intervals and never samples, so its weight goes to the next MEM or OBJ call's line.  From 3.11 on, the
 * interpreter may have to create the frame object, an allocation inside the hook: `in_sample` keeps it from being
 * counted or sampled, and on 3.11, where allocating an object can run the cyclic collector (and with it any
 * finalizer) on the spot, the collector is held off around the look-up.  A sample whose innermost frame belongs to
 * the plugin (its file names start with `own_prefix`) is dropped, as the plugin's own work.  Sampling is for one
 * thread: start() refuses it with all_threads, so the intervals have one writer; the tables of lines and sampled
 * blocks are behind `sample_lock`, taken last, since frees from any thread update them.  Their memory comes from
 * the C library; the lines hold strong references to their code objects until the next start() or samples(). */

typedef struct {
    PyObject *code; /* a strong reference */
    int line;
    unsigned long long calls, bytes;           /* charged */
    unsigned long long live_calls, live_bytes; /* of its sampled blocks still alive */
    unsigned long long peak_calls, peak_bytes; /* live_calls and live_bytes at the last capture */
} site_t;

typedef struct {
    uintptr_t ptr; /* 0: empty slot */
    size_t site;
    unsigned long long calls, bytes;
} sampled_t;

static atomic_flag sample_lock = ATOMIC_FLAG_INIT;
static unsigned long long sample_calls_mean = 1, sample_bytes_mean = 1;
static unsigned long long calls_since, bytes_since, next_call, next_bytes;
static uint64_t random_state = UINT64_C(0x9E3779B97F4A7C15);
static site_t *sites;
static size_t sites_used, sites_capacity;
static size_t *site_index; /* open addressing over (code, line): site number + 1, 0 = empty */
static size_t site_index_capacity;
static sampled_t *sampled;
static size_t sampled_used, sampled_capacity;
static unsigned long long captured, capture_at;
static PyObject *own_prefix;
static int sample_failed;

/* An interval around `mean`: uniform in [1, 2 * mean - 1], so its mean is `mean`. */
static unsigned long long
draw(unsigned long long mean)
{
    if (mean <= 1) {
        return 1;
    }
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return 1 + random_state % (2 * mean - 1);
}

static inline size_t
ptr_slot(uintptr_t ptr, size_t capacity)
{
    return (size_t)(((uint64_t)ptr * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & (capacity - 1);
}

static inline size_t
site_slot(PyObject *code, int line, size_t capacity)
{
    return ptr_slot((uintptr_t)code ^ ((uintptr_t)(unsigned)line << 3), capacity);
}

static int
site_index_grow(void)
{
    size_t capacity = site_index_capacity ? site_index_capacity * 2 : 256;
    size_t *index = calloc(capacity, sizeof(size_t));
    if (index == NULL) {
        return -1;
    }
    for (size_t s = 0; s < sites_used; s++) {
        size_t i = site_slot(sites[s].code, sites[s].line, capacity);
        while (index[i]) {
            i = (i + 1) & (capacity - 1);
        }
        index[i] = s + 1;
    }
    free(site_index);
    site_index = index;
    site_index_capacity = capacity;
    return 0;
}

/* The number of (code, line)'s site, made if new, taking over the reference to `code` then; (size_t)-1 when there
 * is no memory for it.  Under sample_lock. */
static size_t
site_of(PyObject *code, int line, int *taken)
{
    *taken = 0;
    if (site_index_capacity) {
        size_t i = site_slot(code, line, site_index_capacity);
        while (site_index[i]) {
            site_t *site = &sites[site_index[i] - 1];
            if (site->code == code && site->line == line) {
                return site_index[i] - 1;
            }
            i = (i + 1) & (site_index_capacity - 1);
        }
    }
    if ((sites_used + 1) * 2 > site_index_capacity && site_index_grow() < 0) {
        return (size_t)-1;
    }
    if (sites_used == sites_capacity) {
        size_t capacity = sites_capacity ? sites_capacity * 2 : 128;
        site_t *grown = realloc(sites, capacity * sizeof(site_t));
        if (grown == NULL) {
            return (size_t)-1;
        }
        sites = grown;
        sites_capacity = capacity;
    }
    size_t s = sites_used++;
    memset(&sites[s], 0, sizeof(site_t));
    sites[s].code = code;
    sites[s].line = line;
    *taken = 1;
    size_t i = site_slot(code, line, site_index_capacity);
    while (site_index[i]) {
        i = (i + 1) & (site_index_capacity - 1);
    }
    site_index[i] = s + 1;
    return s;
}

static int
sampled_grow(void)
{
    size_t capacity = sampled_capacity ? sampled_capacity * 2 : 1024;
    sampled_t *table = calloc(capacity, sizeof(sampled_t));
    if (table == NULL) {
        return -1;
    }
    for (size_t j = 0; j < sampled_capacity; j++) {
        if (sampled[j].ptr) {
            size_t i = ptr_slot(sampled[j].ptr, capacity);
            while (table[i].ptr) {
                i = (i + 1) & (capacity - 1);
            }
            table[i] = sampled[j];
        }
    }
    free(sampled);
    sampled = table;
    sampled_capacity = capacity;
    return 0;
}

/* Under sample_lock. */
static void
remember_sampled(uintptr_t ptr, size_t site, unsigned long long calls, unsigned long long bytes)
{
    if ((sampled_used + 1) * 2 > sampled_capacity && sampled_grow() < 0) {
        sample_failed = 1;
        return;
    }
    size_t i = ptr_slot(ptr, sampled_capacity);
    while (sampled[i].ptr && sampled[i].ptr != ptr) {
        i = (i + 1) & (sampled_capacity - 1);
    }
    if (sampled[i].ptr == ptr) { /* freed unseen and handed out again: the old record is stale */
        sites[sampled[i].site].live_calls -= sampled[i].calls;
        sites[sampled[i].site].live_bytes -= sampled[i].bytes;
        sampled_used--;
    }
    sampled[i].ptr = ptr;
    sampled[i].site = site;
    sampled[i].calls = calls;
    sampled[i].bytes = bytes;
    sampled_used++;
    sites[site].live_calls += calls;
    sites[site].live_bytes += bytes;
}

/* A tracked block is freed: if it was sampled, its line no longer holds it.  Linear probing with backward-shift
 * deletion, so that no slot is ever a tombstone. */
static void
forget_sampled(uintptr_t ptr)
{
    lock_acquire(&sample_lock);
    if (sampled_used == 0) {
        lock_release(&sample_lock);
        return;
    }
    size_t mask = sampled_capacity - 1;
    size_t i = ptr_slot(ptr, sampled_capacity);
    while (sampled[i].ptr && sampled[i].ptr != ptr) {
        i = (i + 1) & mask;
    }
    if (sampled[i].ptr == ptr) {
        sites[sampled[i].site].live_calls -= sampled[i].calls;
        sites[sampled[i].site].live_bytes -= sampled[i].bytes;
        sampled_used--;
        size_t hole = i;
        for (size_t j = (i + 1) & mask; sampled[j].ptr; j = (j + 1) & mask) {
            size_t home = ptr_slot(sampled[j].ptr, sampled_capacity);
            /* j's entry may move into the hole if its home is not in (hole, j], cyclically */
            if ((j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j)) {
                sampled[hole] = sampled[j];
                hole = j;
            }
        }
        sampled[hole].ptr = 0;
    }
    lock_release(&sample_lock);
}

#if PY_VERSION_HEX >= 0x030D0000
#define current_thread_state() PyThreadState_GetUnchecked()
#else
#define current_thread_state() _PyThreadState_UncheckedGet()
#endif

/* The code object (a new reference) and line of the innermost Python frame, unless there is none or it is the
 * plugin's own; the GIL is held. */
static int
where(PyObject **code_out, int *line_out)
{
    PyThreadState *tstate = current_thread_state();
    if (tstate == NULL) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    int collecting = PyGC_Disable();
#endif
    PyFrameObject *frame = PyThreadState_GetFrame(tstate);
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    if (collecting) {
        PyGC_Enable();
    }
#endif
    if (frame == NULL) {
        return 0;
    }
    PyCodeObject *code = PyFrame_GetCode(frame);
    int found = own_prefix == NULL ||
                PyUnicode_Tailmatch(code->co_filename, own_prefix, 0, PY_SSIZE_T_MAX, -1) != 1;
    if (found) {
        *line_out = PyFrame_GetLineNumber(frame);
        *code_out = (PyObject *)code;
    }
    else {
        Py_DECREF(code); /* still referenced by its frame: no deallocation here */
    }
    Py_DECREF(frame); /* likewise referenced by the running interpreter frame */
    return found;
}

/* After a counted allocation of `size` bytes at `ptr` by the counted thread; `raw`: in the RAW domain. */
static void
sample(int raw, void *ptr, size_t size)
{
    calls_since += 1;
    bytes_since += size;
    if (raw || (calls_since < next_call && bytes_since < next_bytes)) {
        return;
    }
    unsigned long long calls = 0, bytes = 0;
    if (calls_since >= next_call) {
        calls = calls_since;
        calls_since = 0;
        next_call = draw(sample_calls_mean);
    }
    if (bytes_since >= next_bytes) {
        bytes = bytes_since;
        bytes_since = 0;
        next_bytes = draw(sample_bytes_mean);
    }
    PyObject *code = NULL;
    int line = 0;
    in_sample = 1;
    int found = where(&code, &line);
    in_sample = 0;
    if (!found) {
        return;
    }
    int taken = 0;
    lock_acquire(&sample_lock);
    size_t site = site_of(code, line, &taken);
    if (site == (size_t)-1) {
        sample_failed = 1;
    }
    else {
        sites[site].calls += calls;
        sites[site].bytes += bytes;
        remember_sampled((uintptr_t)ptr, site, calls, bytes);
    }
    lock_release(&sample_lock);
    if (!taken) {
        Py_DECREF(code); /* the site holds one already; the frame holds another */
    }
}

/* After a counted allocation: when the live bytes have grown past the last capture by the margin, the lines' live
 * estimates become the ones nearest the peak. */
static void
maybe_capture(void)
{
    unsigned long long now = atomic_load_explicit(&mem_tally.live, memory_order_relaxed) +
                             atomic_load_explicit(&raw_tally.live, memory_order_relaxed);
    if (now < capture_at) {
        return;
    }
    lock_acquire(&sample_lock);
    if (now >= capture_at) {
        for (size_t s = 0; s < sites_used; s++) {
            sites[s].peak_calls = sites[s].live_calls;
            sites[s].peak_bytes = sites[s].live_bytes;
        }
        captured = now;
        capture_at = now + now / 50 + 1024;
    }
    lock_release(&sample_lock);
}

/* Drops every line and sampled block; the GIL is held (code objects are released). */
static void
clear_samples(void)
{
    lock_acquire(&sample_lock);
    site_t *old = sites;
    size_t used = sites_used;
    sites = NULL;
    sites_used = sites_capacity = 0;
    free(site_index);
    site_index = NULL;
    site_index_capacity = 0;
    free(sampled);
    sampled = NULL;
    sampled_used = sampled_capacity = 0;
    captured = 0;
    capture_at = 0;
    sample_failed = 0;
    lock_release(&sample_lock);
    for (size_t s = 0; s < used; s++) {
        Py_DECREF(old[s].code);
    }
    free(old);
}

/* ------------------------------------------------------------------------------------------- the hooks */

typedef struct hook_set hook_set_t;

typedef struct {
    PyMemAllocatorEx previous;
} hook_ctx_t;

struct hook_set {
    hook_ctx_t domains[3]; /* in the order of DOMAINS */
    hook_set_t *older;     /* the set made before this one: every set ever made, since none is ever freed */
};

static const PyMemAllocatorDomain DOMAINS[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
#define RAW 0 /* the index of PYMEM_DOMAIN_RAW in DOMAINS */

static hook_set_t static_set;
/* The set whose hooks count, NULL when none.  An abandoned set may still sit in the chain; it only forwards. */
static hook_set_t *_Atomic installed = NULL;
static hook_set_t *spare = &static_set; /* the set the next start() uses; NULL after a set was abandoned */
static hook_set_t *_Atomic newest = &static_set; /* the list of every set, through `older` */
static hook_set_t *_Atomic switching = NULL;     /* the set that start() or stop() last swapped in or out */

/* Where a call to our function with a context that is not the counting set's goes.  Usually the context is an
 * abandoned set's, which forwards to what it replaced.  But PyMem_SetAllocator swaps a domain's allocator with plain
 * stores, and an interpreter running on a GIL of its own may read it half-swapped: our function with the context of
 * the allocator start() is replacing, or stop() is putting back.  That context is not ours; the allocator it belongs
 * to is the one below the set being swapped, in this domain (which is why each domain has its own functions). */
static const PyMemAllocatorEx *
below(void *vctx, int d)
{
    for (hook_set_t *set = atomic_load_explicit(&newest, memory_order_acquire); set != NULL; set = set->older) {
        if (vctx == &set->domains[d]) {
            return &set->domains[d].previous;
        }
    }
    return &atomic_load_explicit(&switching, memory_order_acquire)->domains[d].previous;
}

/* The counting set's context when vctx is it; NULL when the call is only to be forwarded, through below(). */
static inline hook_ctx_t *
counting_ctx(void *vctx, int d)
{
    hook_set_t *set = atomic_load_explicit(&installed, memory_order_relaxed);
    return set != NULL && vctx == &set->domains[d] ? (hook_ctx_t *)vctx : NULL;
}

/* Whether a call reaching the counting set's hook is accounted.  RAW calls made on behalf of an OBJ/MEM call are
 * that call's, already accounted. */
static inline int
accounts(int d)
{
    return atomic_load_explicit(&counting, memory_order_relaxed) && (d != RAW || !in_hook);
}

static inline void *
hook_malloc(void *vctx, int d, size_t size)
{
    hook_ctx_t *ctx = counting_ctx(vctx, d);
    if (ctx == NULL) {
        const PyMemAllocatorEx *down = below(vctx, d);
        return down->malloc(down->ctx, size);
    }
    int accounted = accounts(d);
    in_hook++;
    void *ptr = ctx->previous.malloc(ctx->previous.ctx, size);
    in_hook--;
    if (ptr != NULL && accounted && account(d == RAW, NULL, ptr, size, 0) && sampling) {
        sample(d == RAW, ptr, size);
        maybe_capture();
    }
    return ptr;
}

static inline void *
hook_calloc(void *vctx, int d, size_t nelem, size_t elsize)
{
    hook_ctx_t *ctx = counting_ctx(vctx, d);
    if (ctx == NULL) {
        const PyMemAllocatorEx *down = below(vctx, d);
        return down->calloc(down->ctx, nelem, elsize);
    }
    int accounted = accounts(d);
    in_hook++;
    void *ptr = ctx->previous.calloc(ctx->previous.ctx, nelem, elsize);
    in_hook--;
    if (ptr != NULL && accounted && account(d == RAW, NULL, ptr, nelem * elsize, 0) && sampling) {
        sample(d == RAW, ptr, nelem * elsize);
        maybe_capture();
    }
    return ptr;
}

static inline void *
hook_realloc(void *vctx, int d, void *old, size_t size)
{
    hook_ctx_t *ctx = counting_ctx(vctx, d);
    if (ctx == NULL) {
        const PyMemAllocatorEx *down = below(vctx, d);
        return down->realloc(down->ctx, old, size);
    }
    int accounted = accounts(d);
    in_hook++;
    void *ptr = ctx->previous.realloc(ctx->previous.ctx, old, size);
    in_hook--;
    if (ptr != NULL && accounted) { /* on failure the old block is untouched */
        /* A moved block's old address may already have been handed to another thread, and recorded by it: then
         * table_put dropped this block's record as stale, and the pop below takes the other's; either way live
         * bytes stay the sum of the records. */
        if (account(d == RAW, old, ptr, size, 1) && sampling) {
            sample(d == RAW, ptr, size);
            maybe_capture();
        }
    }
    return ptr;
}

static inline void
hook_free(void *vctx, int d, void *ptr)
{
    hook_ctx_t *ctx = counting_ctx(vctx, d);
    if (ctx == NULL) {
        const PyMemAllocatorEx *down = below(vctx, d);
        down->free(down->ctx, ptr);
        return;
    }
    if (ptr != NULL && accounts(d)) {
        account(d == RAW, ptr, NULL, 0, 0); /* before the free: once freed, the address may be handed out again */
    }
    in_hook++;
    ctx->previous.free(ctx->previous.ctx, ptr);
    in_hook--;
}

#define DOMAIN_HOOKS(D, NAME)                                                                                      \
    static void *NAME##_malloc(void *ctx, size_t size) { return hook_malloc(ctx, D, size); }                      \
    static void *NAME##_calloc(void *ctx, size_t nelem, size_t elsize) { return hook_calloc(ctx, D, nelem, elsize); } \
    static void *NAME##_realloc(void *ctx, void *old, size_t size) { return hook_realloc(ctx, D, old, size); }   \
    static void NAME##_free(void *ctx, void *ptr) { hook_free(ctx, D, ptr); }

DOMAIN_HOOKS(0, raw)
DOMAIN_HOOKS(1, mem)
DOMAIN_HOOKS(2, obj)

/* Each domain's hook functions, in the order of DOMAINS; the context is filled in at start(). */
static const PyMemAllocatorEx HOOKS[3] = {
    {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free},
    {NULL, mem_malloc, mem_calloc, mem_realloc, mem_free},
    {NULL, obj_malloc, obj_calloc, obj_realloc, obj_free},
};

static int
is_ours(int d, hook_ctx_t *ctx)
{
    PyMemAllocatorEx current;
    PyMem_GetAllocator(DOMAINS[d], &current);
    return current.ctx == ctx && current.malloc == HOOKS[d].malloc && current.calloc == HOOKS[d].calloc &&
           current.realloc == HOOKS[d].realloc && current.free == HOOKS[d].free;
}

/* ------------------------------------------------------------------------------------------- Python API */

/* Under both locks: a thread in another interpreter, or one without a GIL, may be in the middle of a call. */
static void
clear_tables(void)
{
    lock_acquire(&raw_lock);
    table_clear(&raw_table);
    lock_release(&raw_lock);
    lock_acquire(&mem_lock);
    table_clear(&mem_table);
    lock_release(&mem_lock);
}

static PyObject *
counter_start(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *keywords[] = {"all_threads", "sample_calls", "sample_bytes", "own_prefix", NULL};
    int every_thread = 0;
    unsigned long long every_calls = 0, every_bytes = 0;
    PyObject *prefix = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pKKU:start", keywords, &every_thread, &every_calls, &every_bytes,
                                     &prefix)) {
        return NULL;
    }
    if ((every_calls == 0) != (every_bytes == 0)) {
        PyErr_SetString(PyExc_ValueError, "sample_calls and sample_bytes are given together");
        return NULL;
    }
    if (every_calls && every_thread) {
        PyErr_SetString(PyExc_ValueError, "lines are sampled in one thread only, not with all_threads");
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    PyErr_SetString(PyExc_RuntimeError,
                    "the allocation counter does not support free-threaded Python builds");
    return NULL;
#endif
    if (installed != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the allocation counter is already running");
        return NULL;
    }
    hook_set_t *set = spare;
    if (set == NULL) {
        /* The previous set may still be in someone's chain, so it is never reused or freed. */
        set = calloc(1, sizeof(hook_set_t));
        if (set == NULL) {
            return PyErr_NoMemory();
        }
        set->older = atomic_load(&newest);
        atomic_store_explicit(&newest, set, memory_order_release);
        spare = set;
    }
    clear_tables();
    clear_samples();
    Py_XINCREF(prefix);
    Py_XSETREF(own_prefix, prefix);
    sampling = every_calls != 0;
    if (sampling) {
        sample_calls_mean = every_calls;
        sample_bytes_mean = every_bytes;
        calls_since = bytes_since = 0;
        next_call = draw(sample_calls_mean);
        next_bytes = draw(sample_bytes_mean);
        capture_at = 1024;
    }
    for (int i = 0; i < 2; i++) {
        tally_t *tally = i ? &raw_tally : &mem_tally;
        atomic_store(&tally->allocations, 0);
        atomic_store(&tally->allocated, 0);
        atomic_store(&tally->live, 0);
    }
    atomic_store(&peak, 0);
    atomic_store(&paused, 0);
    all_threads = every_thread;
    my_generation = atomic_fetch_add(&generation, 1) + 1;
    for (int i = 0; i < 3; i++) {
        PyMem_GetAllocator(DOMAINS[i], &set->domains[i].previous);
    }
    atomic_store_explicit(&switching, set, memory_order_release); /* before a half-swapped allocator can be read */
    for (int i = 0; i < 3; i++) {
        PyMemAllocatorEx hook = HOOKS[i];
        hook.ctx = &set->domains[i];
        PyMem_SetAllocator(DOMAINS[i], &hook);
    }
    installed = set;
    atomic_store(&counting, 1); /* last: nothing above is counted */
    Py_RETURN_NONE;
}

/* Stops counting and unhooks.  Returns (allocations, allocated, live, peak, exact); the tuple is built after
 * the hooks are gone, so it is not counted. */
static PyObject *
counter_stop(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    atomic_store(&counting, 0); /* first: nothing below is counted */
    if (installed == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the allocation counter is not running");
        return NULL;
    }
    lock_acquire(&raw_lock);
    lock_acquire(&mem_lock);
    unsigned long long n = atomic_load(&mem_tally.allocations) + atomic_load(&raw_tally.allocations);
    unsigned long long bytes = atomic_load(&mem_tally.allocated) + atomic_load(&raw_tally.allocated);
    unsigned long long alive = atomic_load(&mem_tally.live) + atomic_load(&raw_tally.live);
    unsigned long long high = atomic_load(&peak);
    int exact = !mem_table.failed && !raw_table.failed;
    lock_release(&mem_lock);
    lock_release(&raw_lock);

    hook_set_t *set = installed;
    sampling = 0; /* what was sampled stays for samples() */
    int on_top = 1;
    for (int i = 2; i >= 0; i--) {
        on_top = on_top && is_ours(i, &set->domains[i]);
    }
    installed = NULL;
    if (!on_top) {
        /* Someone hooked above us or removed us out of order.  Restoring now would cut them out of the chain (or
         * put back an allocator they have torn down), so leave the chain as it is.  Our hooks may still be
         * called: they forward through `set`, which therefore stays untouched for good; the next start() uses
         * new memory. */
        spare = NULL;
        /* The tables are left as they are: a hook still in the chain may be in the middle of using one. */
        PyErr_SetString(
            PyExc_RuntimeError,
            "the allocation counter is no longer the installed allocator (another allocator hook, such as "
            "tracemalloc, was started after it and is still running, or removed it out of order); it stopped "
            "counting and left the allocator chain untouched. Stop hooks in the reverse order of starting them.");
        return NULL;
    }
    atomic_store_explicit(&switching, set, memory_order_release);
    for (int i = 2; i >= 0; i--) {
        PyMem_SetAllocator(DOMAINS[i], &set->domains[i].previous);
    }
    clear_tables();
    return Py_BuildValue("(KKKKO)", n, bytes, alive, high, exact ? Py_True : Py_False);
}

static PyObject *
counter_running(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyBool_FromLong(installed != NULL);
}

/* pause() and resume() allocate nothing, so they can bracket code that must not be counted (the closing
 * collection of a region, an explanation's own bookkeeping) while frees of counted blocks are still honoured. */
static PyObject *
counter_pause(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    atomic_store(&paused, 1);
    Py_RETURN_NONE;
}

static PyObject *
counter_resume(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    atomic_store(&paused, 0);
    Py_RETURN_NONE;
}

/* counts() -> (allocations, allocated) so far, without stopping; the tuple is counted unless paused. */
static PyObject *
counter_counts(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    unsigned long long n = atomic_load(&mem_tally.allocations) + atomic_load(&raw_tally.allocations);
    unsigned long long bytes = atomic_load(&mem_tally.allocated) + atomic_load(&raw_tally.allocated);
    return Py_BuildValue("(KK)", n, bytes);
}

/* samples() -> (captured, [(filename, lineno, calls, bytes, peak_calls, peak_bytes, live_calls, live_bytes)], exact)
 * after a sampling window has stopped; the lines are forgotten.  `captured` is the live bytes at the capture the
 * peak_* figures come from, live_* are what was alive at stop(); `exact` is false when the tables ran out of
 * memory and some samples were lost. */
static PyObject *
counter_samples(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (installed != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the allocation counter is still running");
        return NULL;
    }
    PyObject *lines = PyList_New(0);
    if (lines == NULL) {
        return NULL;
    }
    for (size_t s = 0; s < sites_used; s++) {
        site_t *site = &sites[s];
        PyObject *item = Py_BuildValue("(OiKKKKKK)", ((PyCodeObject *)site->code)->co_filename, site->line,
                                       site->calls, site->bytes, site->peak_calls, site->peak_bytes,
                                       site->live_calls, site->live_bytes);
        if (item == NULL || PyList_Append(lines, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(lines);
            return NULL;
        }
        Py_DECREF(item);
    }
    PyObject *result = Py_BuildValue("(KNO)", captured, lines, sample_failed ? Py_False : Py_True);
    clear_samples();
    return result;
}

static PyMethodDef methods[] = {
    {"start", (PyCFunction)(void (*)(void))counter_start, METH_VARARGS | METH_KEYWORDS,
     "start(all_threads=False, sample_calls=0, sample_bytes=0, own_prefix=None): hook the allocators and count "
     "from now on; with sample_calls and sample_bytes, also sample the lines that allocate (see samples())."},
    {"samples", counter_samples, METH_NOARGS,
     "samples() -> (captured, lines, exact): what the last sampling window sampled, once it has stopped."},
    {"stop", counter_stop, METH_NOARGS,
     "stop() -> (allocations, allocated, live, peak, exact): unhook and return the counts."},
    {"running", counter_running, METH_NOARGS, "running() -> bool: whether the hooks are installed."},
    {"pause", counter_pause, METH_NOARGS, "pause(): stop counting new blocks; frees of counted ones still count."},
    {"resume", counter_resume, METH_NOARGS, "resume(): count new blocks again."},
    {"counts", counter_counts, METH_NOARGS, "counts() -> (allocations, allocated) so far."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_counter",
    "Allocation counter hooked into CPython's allocator domains; see pytest_allocbudget.counter.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__counter(void)
{
    return PyModule_Create(&module_def);
}
