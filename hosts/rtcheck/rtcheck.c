// adac real-time check: an LD_PRELOAD interposer that counts what a host's audio thread must never do.
//
//   LD_PRELOAD=librtcheck.so ADAC_RTCHECK_REPORT=report.json host ...
//
// A host brackets each block of audio-thread work with adac_rt_begin()/adac_rt_end() (adac::RtScope in
// rtcheck.h; nesting is allowed). While a thread is inside a bracket, this library counts, per category:
//  - allocation and release: malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc,
//    pvalloc, operator new / new[] / delete / delete[] (every variant: sized, aligned, nothrow); the
//    release of a null pointer is a no-op and is not counted;
//  - locks and blocking waits: pthread_mutex_lock/timedlock/clocklock, pthread_rwlock_rdlock/wrlock (and
//    timed), pthread_spin_lock, pthread_cond_wait/timedwait/clockwait, sem_wait/timedwait/clockwait;
//    try-locks (pthread_mutex_trylock, pthread_rwlock_tryrdlock/trywrlock) are not counted: they never wait
//    (an atomic compare-and-swap that fails at once). The system call a try-lock's owner may make later,
//    the futex wake of an unlock that another thread waits on, is counted below like any other;
//  - every system call, futex waits inside glibc included, through Linux's syscall user dispatch
//    (prctl PR_SET_SYSCALL_USER_DISPATCH, kernel >= 5.11): a per-thread selector byte, set to BLOCK inside
//    a bracket, makes each system call raise SIGSYS; the handler counts it by number and then performs it
//    from this library's own code region (the one region the kernel lets through), so the host behaves
//    exactly as without the check. Calls through the vDSO (clock_gettime) are not system calls.
// Allocation is passed to glibc's __libc_* entry points (no dlsym while bootstrapping); the lock functions
// are found with dlsym(RTLD_NEXT). Each violation is counted at its call site (the innermost frame outside
// this library and the C/C++ runtime): up to MAX_SITES sites per category, each with the backtrace of its
// first violation (module path+offset and dynamic symbol per frame), recorded with the thread's bracket
// suspended so that recording it is not counted.
//
// With ADAC_RTCHECK_EXEMPT_MAIN=1, a violation whose innermost caller outside this library and the C/C++
// runtime is the main program's own code is counted apart ("host_counts"): a test host that loads a plugin
// then answers for the plugin only (its own side, e.g. JUCE's VST3 hosting, is reported, not counted).
//
// At exit: one summary line on stderr, and if ADAC_RTCHECK_REPORT names a file, a JSON report there
// (written to a temporary file and renamed):
//   {"scopes": brackets entered, "threads": threads that entered one, "syscall_dispatch": true|false,
//    "dispatch_error": "", "counts": {category: n, ...}, "syscalls": {name: n, ...},
//    "sites": {category: [{"count": n, "frames": ["/path/module+0xoffset symbol", ...]}, ...], ...},
//    "exempt_main": bool, "host_counts": {...}, "host_sites": {...}}
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif
#define SYS_USER_DISPATCH_CODE 2  /* siginfo si_code of a dispatched system call */

#define EXPORT __attribute__((visibility("default")))
#define TLS __attribute__((tls_model("initial-exec"))) static __thread

// ------------------------------------------------------------------------------------ categories

#define CATEGORIES(X) \
    X(malloc) X(calloc) X(realloc) X(free) X(posix_memalign) X(aligned_alloc) X(memalign) X(valloc) X(pvalloc) \
    X(operator_new) X(operator_new_array) X(operator_delete) X(operator_delete_array) \
    X(pthread_mutex_lock) X(pthread_mutex_timedlock) X(pthread_mutex_clocklock) \
    X(pthread_rwlock_rdlock) X(pthread_rwlock_wrlock) \
    X(pthread_rwlock_timedrdlock) X(pthread_rwlock_timedwrlock) X(pthread_spin_lock) \
    X(pthread_cond_wait) X(pthread_cond_timedwait) X(pthread_cond_clockwait) \
    X(sem_wait) X(sem_timedwait) X(sem_clockwait) X(syscall)

enum {
#define ENUM(name) C_##name,
    CATEGORIES(ENUM)
#undef ENUM
    C_COUNT
};
static const char* const category_names[C_COUNT] = {
#define NAME(name) #name,
    CATEGORIES(NAME)
#undef NAME
};

#define MAX_SYSCALL 512
#define MAX_FRAMES 24
#define FRAME_TEXT 400

static atomic_long counts[C_COUNT];
static atomic_long syscall_counts[MAX_SYSCALL];
static atomic_long scopes, threads;
#define MAX_SITES 6
struct site {
    _Atomic(uintptr_t) address;  // the call site, 0 while free
    atomic_long count;
    int frame_count;
    char frames[MAX_FRAMES][FRAME_TEXT];
};
static struct site sites[C_COUNT][MAX_SITES], host_sites[C_COUNT][MAX_SITES];
static int dispatch_usable = 1;  // cleared when a thread's prctl fails
static char dispatch_error[128];

TLS int depth;                 // brackets open on this thread
TLS int recording;             // this thread is recording a backtrace (nothing counted meanwhile)
TLS int dispatch_state;        // 0: not set up on this thread, 1: on, -1: failed
TLS volatile char selector = SYSCALL_DISPATCH_FILTER_ALLOW;

// ------------------------------------------------- the code region the kernel lets system calls through

// adac_rt_raw_syscall(nr, a1..a6): the system call itself; adac_rt_restorer: the signal return
// (byte for byte glibc's __restore_rt, so that unwinders recognise the signal frame).
long adac_rt_raw_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6) __attribute__((visibility("hidden")));
void adac_rt_restorer(void) __attribute__((visibility("hidden")));
extern const char adac_rt_region_begin[] __attribute__((visibility("hidden")));
extern const char adac_rt_region_end[] __attribute__((visibility("hidden")));
__asm__(
    ".pushsection .text.adac_rt_region,\"ax\",@progbits\n"
    ".hidden adac_rt_region_begin\n.globl adac_rt_region_begin\nadac_rt_region_begin:\n"
    ".hidden adac_rt_raw_syscall\n.globl adac_rt_raw_syscall\n.type adac_rt_raw_syscall,@function\n"
    "adac_rt_raw_syscall:\n"
    "  movq %rdi, %rax\n  movq %rsi, %rdi\n  movq %rdx, %rsi\n  movq %rcx, %rdx\n"
    "  movq %r8, %r10\n  movq %r9, %r8\n  movq 8(%rsp), %r9\n  syscall\n  ret\n"
    ".size adac_rt_raw_syscall, .-adac_rt_raw_syscall\n"
    "  nop\n"
    ".hidden adac_rt_restorer\n.globl adac_rt_restorer\n.type adac_rt_restorer,@function\n"
    "adac_rt_restorer:\n  movq $15, %rax\n  syscall\n"
    ".size adac_rt_restorer, .-adac_rt_restorer\n"
    "  nop\n"  // the kernel compares the address after the syscall instruction: keep it inside
    ".hidden adac_rt_region_end\n.globl adac_rt_region_end\nadac_rt_region_end:\n"
    ".popsection\n");

// ------------------------------------------------------------------------------------- recording

static const char* syscall_name(long nr)
{
    switch (nr) {
    case SYS_read: return "read";
    case SYS_write: return "write";
    case SYS_open: return "open";
    case SYS_openat: return "openat";
    case SYS_close: return "close";
    case SYS_futex: return "futex";
    case SYS_mmap: return "mmap";
    case SYS_munmap: return "munmap";
    case SYS_mprotect: return "mprotect";
    case SYS_madvise: return "madvise";
    case SYS_brk: return "brk";
    case SYS_sched_yield: return "sched_yield";
    case SYS_nanosleep: return "nanosleep";
    case SYS_clock_nanosleep: return "clock_nanosleep";
    case SYS_clock_gettime: return "clock_gettime";
    case SYS_gettid: return "gettid";
    case SYS_getpid: return "getpid";
    case SYS_ioctl: return "ioctl";
    case SYS_poll: return "poll";
    case SYS_ppoll: return "ppoll";
    case SYS_newfstatat: return "newfstatat";
    case SYS_fstat: return "fstat";
    case SYS_statx: return "statx";
    case SYS_lseek: return "lseek";
    case SYS_rt_sigprocmask: return "rt_sigprocmask";
    case SYS_rt_sigreturn: return "rt_sigreturn";
    case SYS_getrandom: return "getrandom";
    default: return NULL;
    }
}

static void format_frame(char* out, void* address)
{
    Dl_info info;
    if (dladdr(address, &info) && info.dli_fname) {
        snprintf(out, FRAME_TEXT, "%s+0x%lx %s", info.dli_fname, (unsigned long) ((char*) address - (char*) info.dli_fbase),
                 info.dli_sname ? info.dli_sname : "?");
    } else {
        snprintf(out, FRAME_TEXT, "%p", address);
    }
}

// The main program's code (for ADAC_RTCHECK_EXEMPT_MAIN) and this library's base address.
static uintptr_t main_begin, main_end;
static void* own_base;
static int exempt_main;

static int find_main(struct dl_phdr_info* info, size_t size, void* data)
{
    (void) size; (void) data;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        main_begin = info->dlpi_addr + ph->p_vaddr;
        main_end = main_begin + ph->p_memsz;
    }
    return 1;  // the first object is the main program
}

static int is_runtime(const char* path)
{
    const char* base = strrchr(path, '/');
    base = base ? base + 1 : path;
    static const char* const runtime[] = {"libc.so", "libstdc++.so", "libgcc_s.so", "libm.so", "ld-linux"};
    for (size_t i = 0; i < sizeof runtime / sizeof *runtime; ++i)
        if (strncmp(base, runtime[i], strlen(runtime[i])) == 0) return 1;
    return 0;
}

// Whose violation: the innermost frame outside this library and the C/C++ runtime decides; code dladdr
// does not know (a JIT's) is not the main program's.
static int made_by_main(void* const* frames, int n)
{
    for (int i = 0; i < n; ++i) {
        Dl_info info;
        if (!dladdr(frames[i], &info) || !info.dli_fname) return 0;
        if (info.dli_fbase == own_base || is_runtime(info.dli_fname)) continue;
        return (uintptr_t) frames[i] >= main_begin && (uintptr_t) frames[i] < main_end;
    }
    return 0;
}

static atomic_long host_counts[C_COUNT];

// Counts a violation at its call site (the innermost frame outside this library and the C/C++ runtime);
// a new site keeps its backtrace.
static void count_site(struct site* table, void* const* frames, int n)
{
    uintptr_t address = 0;
    for (int i = 0; i < n && !address; ++i) {
        Dl_info info;
        if (!dladdr(frames[i], &info) || (info.dli_fbase != own_base && !is_runtime(info.dli_fname)))
            address = (uintptr_t) frames[i];
    }
    if (!address) return;
    for (int k = 0; k < MAX_SITES; ++k) {
        uintptr_t expected = 0;
        if (atomic_load(&table[k].address) == address) {
            atomic_fetch_add(&table[k].count, 1);
            return;
        }
        if (atomic_compare_exchange_strong(&table[k].address, &expected, address)) {
            for (int i = 0; i < n; ++i) format_frame(table[k].frames[i], frames[i]);
            table[k].frame_count = n;
            atomic_fetch_add(&table[k].count, 1);
            return;
        }
        if (expected == address) {
            atomic_fetch_add(&table[k].count, 1);
            return;
        }
    }
}

// One violation: counted (or, with ADAC_RTCHECK_EXEMPT_MAIN, counted apart if the main program made it);
// counted at its call site too. The thread's bracket is suspended meanwhile.
static void violation(int category, long syscall_nr, void* interrupted)
{
    const char saved_selector = selector;
    recording = 1;
    selector = SYSCALL_DISPATCH_FILTER_ALLOW;
    void* frames[MAX_FRAMES];
    int n = 0;
    if (interrupted) frames[n++] = interrupted;  // where the system call was made
    n += backtrace(frames + n, MAX_FRAMES - n);
    const int host = exempt_main && made_by_main(frames, n);
    atomic_fetch_add_explicit(host ? &host_counts[category] : &counts[category], 1, memory_order_relaxed);
    if (!host && syscall_nr >= 0 && syscall_nr < MAX_SYSCALL)
        atomic_fetch_add_explicit(&syscall_counts[syscall_nr], 1, memory_order_relaxed);
    count_site(host ? host_sites[category] : sites[category], frames, n);
    selector = saved_selector;
    recording = 0;
}

static inline int counting(void) { return depth > 0 && !recording; }

#define CHECK(category) do { if (__builtin_expect(counting(), 0)) violation(category, -1, NULL); } while (0)

// ------------------------------------------------------------------------------------ system calls

static void on_sigsys(int sig, siginfo_t* info, void* context)
{
    (void) sig;
    greg_t* regs = ((ucontext_t*) context)->uc_mcontext.gregs;
    if (info->si_code != SYS_USER_DISPATCH_CODE) return;  // not ours (e.g. seccomp): nothing to emulate
    selector = SYSCALL_DISPATCH_FILTER_ALLOW;  // the handler's own calls are free
    const long nr = info->si_syscall;
    if (!recording) violation(C_syscall, nr, (void*) regs[REG_RIP]);
    if (nr == SYS_rt_sigreturn) {
        // another handler's return (its restorer is not in our region): let it run again unfiltered;
        // this thread's bracket then counts no more system calls until it ends
        regs[REG_RIP] -= 2;
        return;
    }
    regs[REG_RAX] = adac_rt_raw_syscall(nr, regs[REG_RDI], regs[REG_RSI], regs[REG_RDX], regs[REG_R10], regs[REG_R8],
                                        regs[REG_R9]);
    selector = SYSCALL_DISPATCH_FILTER_BLOCK;  // we return through adac_rt_restorer, inside the region
}

struct kernel_sigaction {
    void (*handler)(int, siginfo_t*, void*);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};
#define KSA_SIGINFO 0x00000004UL
#define KSA_RESTORER 0x04000000UL

static void enable_dispatch_on_this_thread(void)
{
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (unsigned long) adac_rt_region_begin,
              (unsigned long) (adac_rt_region_end - adac_rt_region_begin), (unsigned long) &selector) == 0) {
        dispatch_state = 1;
    } else {
        dispatch_state = -1;
        dispatch_usable = 0;
        snprintf(dispatch_error, sizeof dispatch_error, "prctl(PR_SET_SYSCALL_USER_DISPATCH): %s", strerror(errno));
    }
}

// --------------------------------------------------------------------------------------- brackets

EXPORT void adac_rt_begin(void)
{
    if (recording) return;
    if (depth++ > 0) return;
    if (dispatch_state == 0) {
        enable_dispatch_on_this_thread();
        atomic_fetch_add(&threads, 1);
    }
    atomic_fetch_add_explicit(&scopes, 1, memory_order_relaxed);
    if (dispatch_state == 1) selector = SYSCALL_DISPATCH_FILTER_BLOCK;
}

EXPORT void adac_rt_end(void)
{
    if (recording || depth == 0) return;
    if (--depth == 0) selector = SYSCALL_DISPATCH_FILTER_ALLOW;
}

// ------------------------------------------------------------------------------------- allocation

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_valloc(size_t);
extern void* __libc_pvalloc(size_t);

EXPORT void* malloc(size_t size) { CHECK(C_malloc); return __libc_malloc(size); }
EXPORT void* calloc(size_t n, size_t size) { CHECK(C_calloc); return __libc_calloc(n, size); }
EXPORT void* realloc(void* p, size_t size) { CHECK(C_realloc); return __libc_realloc(p, size); }
EXPORT void free(void* p) { if (p) CHECK(C_free); __libc_free(p); }
EXPORT void* memalign(size_t alignment, size_t size) { CHECK(C_memalign); return __libc_memalign(alignment, size); }
EXPORT void* aligned_alloc(size_t alignment, size_t size) { CHECK(C_aligned_alloc); return __libc_memalign(alignment, size); }
EXPORT void* valloc(size_t size) { CHECK(C_valloc); return __libc_valloc(size); }
EXPORT void* pvalloc(size_t size) { CHECK(C_pvalloc); return __libc_pvalloc(size); }
EXPORT int posix_memalign(void** out, size_t alignment, size_t size)
{
    CHECK(C_posix_memalign);
    if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    void* p = __libc_memalign(alignment, size);
    if (!p && size) return ENOMEM;
    *out = p;
    return 0;
}

// operator new/delete (C++, in rtcheck_new.cpp) call these
void* adac_rt_new(size_t size, size_t alignment, int array)
{
    CHECK(array ? C_operator_new_array : C_operator_new);
    return alignment ? __libc_memalign(alignment, size ? size : 1) : __libc_malloc(size ? size : 1);
}

void adac_rt_delete(void* p, int array)
{
    if (p) CHECK(array ? C_operator_delete_array : C_operator_delete);
    __libc_free(p);
}

// ------------------------------------------------------------------------------- locks and waits

#define REAL(ret, name, params) static ret (*real_##name) params;
REAL(int, pthread_mutex_lock, (pthread_mutex_t*))
REAL(int, pthread_mutex_timedlock, (pthread_mutex_t*, const struct timespec*))
REAL(int, pthread_mutex_clocklock, (pthread_mutex_t*, clockid_t, const struct timespec*))
REAL(int, pthread_rwlock_rdlock, (pthread_rwlock_t*))
REAL(int, pthread_rwlock_wrlock, (pthread_rwlock_t*))
REAL(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t*, const struct timespec*))
REAL(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t*, const struct timespec*))
REAL(int, pthread_spin_lock, (pthread_spinlock_t*))
REAL(int, pthread_cond_wait, (pthread_cond_t*, pthread_mutex_t*))
REAL(int, pthread_cond_timedwait, (pthread_cond_t*, pthread_mutex_t*, const struct timespec*))
REAL(int, pthread_cond_clockwait, (pthread_cond_t*, pthread_mutex_t*, clockid_t, const struct timespec*))
REAL(int, sem_wait, (sem_t*))
REAL(int, sem_timedwait, (sem_t*, const struct timespec*))
REAL(int, sem_clockwait, (sem_t*, clockid_t, const struct timespec*))
#undef REAL

static void* next_symbol(const char* name)
{
    // pthread_cond_* exist in two versions: take the current one (dlsym would return the 2.2.5 compat one)
    void* found = strncmp(name, "pthread_cond_", 13) == 0 ? dlvsym(RTLD_NEXT, name, "GLIBC_2.3.2") : NULL;
    if (!found) found = dlsym(RTLD_NEXT, name);
    if (!found) {
        fprintf(stderr, "adac-rtcheck: %s not found after the interposer\n", name);
        abort();
    }
    return found;
}

// resolved on first use too: other libraries' constructors (LLVM's) may lock before ours has run
#define WRAP(ret, name, params, args) \
    EXPORT ret name params \
    { \
        CHECK(C_##name); \
        if (__builtin_expect(!real_##name, 0)) real_##name = (ret(*) params) next_symbol(#name); \
        return real_##name args; \
    }
WRAP(int, pthread_mutex_lock, (pthread_mutex_t* m), (m))
WRAP(int, pthread_mutex_timedlock, (pthread_mutex_t* m, const struct timespec* t), (m, t))
WRAP(int, pthread_mutex_clocklock, (pthread_mutex_t* m, clockid_t c, const struct timespec* t), (m, c, t))
WRAP(int, pthread_rwlock_rdlock, (pthread_rwlock_t* l), (l))
WRAP(int, pthread_rwlock_wrlock, (pthread_rwlock_t* l), (l))
WRAP(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t* l, const struct timespec* t), (l, t))
WRAP(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t* l, const struct timespec* t), (l, t))
WRAP(int, pthread_spin_lock, (pthread_spinlock_t* l), (l))
WRAP(int, pthread_cond_wait, (pthread_cond_t* c, pthread_mutex_t* m), (c, m))
WRAP(int, pthread_cond_timedwait, (pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* t), (c, m, t))
WRAP(int, pthread_cond_clockwait, (pthread_cond_t* c, pthread_mutex_t* m, clockid_t k, const struct timespec* t), (c, m, k, t))
WRAP(int, sem_wait, (sem_t* s), (s))
WRAP(int, sem_timedwait, (sem_t* s, const struct timespec* t), (s, t))
WRAP(int, sem_clockwait, (sem_t* s, clockid_t k, const struct timespec* t), (s, k, t))
#undef WRAP

// ------------------------------------------------------------------------------- start and report

__attribute__((constructor)) static void start(void)
{
#define RESOLVE(name) real_##name = next_symbol(#name);
    RESOLVE(pthread_mutex_lock) RESOLVE(pthread_mutex_timedlock)
    RESOLVE(pthread_mutex_clocklock) RESOLVE(pthread_rwlock_rdlock) RESOLVE(pthread_rwlock_wrlock)
    RESOLVE(pthread_rwlock_timedrdlock)
    RESOLVE(pthread_rwlock_timedwrlock) RESOLVE(pthread_spin_lock) RESOLVE(pthread_cond_wait)
    RESOLVE(pthread_cond_timedwait) RESOLVE(pthread_cond_clockwait) RESOLVE(sem_wait) RESOLVE(sem_timedwait)
    RESOLVE(sem_clockwait)
#undef RESOLVE
    void* warm[2];
    backtrace(warm, 2);  // loads the unwinder now, not inside a bracket
    Dl_info self;
    if (dladdr((void*) adac_rt_begin, &self)) own_base = self.dli_fbase;
    dl_iterate_phdr(find_main, NULL);
    const char* exempt = getenv("ADAC_RTCHECK_EXEMPT_MAIN");
    exempt_main = exempt && *exempt && strcmp(exempt, "0") != 0;
    struct kernel_sigaction action = {on_sigsys, KSA_SIGINFO | KSA_RESTORER, adac_rt_restorer, 0};
    if (syscall(SYS_rt_sigaction, SIGSYS, &action, NULL, sizeof action.mask) != 0) {
        dispatch_usable = 0;
        snprintf(dispatch_error, sizeof dispatch_error, "rt_sigaction(SIGSYS): %s", strerror(errno));
    }
}

static void json_string(FILE* out, const char* text)
{
    fputc('"', out);
    for (const unsigned char* c = (const unsigned char*) text; *c; ++c) {
        if (*c == '"' || *c == '\\') fprintf(out, "\\%c", *c);
        else if (*c < 0x20 || *c > 0x7e) fprintf(out, "\\u%04x", *c);
        else fputc(*c, out);
    }
    fputc('"', out);
}

static void write_counts(FILE* out, atomic_long* table, int nonzero_only)
{
    int listed = 0;
    for (int c = 0; c < C_COUNT; ++c) {
        const long n = atomic_load(&table[c]);
        if (n || !nonzero_only) fprintf(out, "%s\"%s\": %ld", listed++ ? ", " : "", category_names[c], n);
    }
}

static void write_sites(FILE* out, struct site (*table)[MAX_SITES])
{
    int listed = 0;
    for (int c = 0; c < C_COUNT; ++c) {
        if (!atomic_load(&table[c][0].address)) continue;
        fprintf(out, "%s\"%s\": [", listed++ ? ", " : "", category_names[c]);
        for (int k = 0; k < MAX_SITES && atomic_load(&table[c][k].address); ++k) {
            fprintf(out, "%s{\"count\": %ld, \"frames\": [", k ? ", " : "", atomic_load(&table[c][k].count));
            for (int f = 0; f < table[c][k].frame_count; ++f) {
                if (f) fputs(", ", out);
                json_string(out, table[c][k].frames[f]);
            }
            fputs("]}", out);
        }
        fputc(']', out);
    }
}

static void write_report(FILE* out)
{
    fprintf(out, "{\"scopes\": %ld, \"threads\": %ld, \"syscall_dispatch\": %s, \"dispatch_error\": ",
            atomic_load(&scopes), atomic_load(&threads), dispatch_usable ? "true" : "false");
    json_string(out, dispatch_error);
    fputs(", \"counts\": {", out);
    write_counts(out, counts, 0);
    fputs("}, \"syscalls\": {", out);
    int listed = 0;
    for (long nr = 0; nr < MAX_SYSCALL; ++nr) {
        const long n = atomic_load(&syscall_counts[nr]);
        if (!n) continue;
        const char* name = syscall_name(nr);
        if (name) fprintf(out, "%s\"%s\": %ld", listed++ ? ", " : "", name, n);
        else fprintf(out, "%s\"syscall_%ld\": %ld", listed++ ? ", " : "", nr, n);
    }
    fputs("}, \"sites\": {", out);
    write_sites(out, sites);
    fprintf(out, "}, \"exempt_main\": %s, \"host_counts\": {", exempt_main ? "true" : "false");
    write_counts(out, host_counts, 1);
    fputs("}, \"host_sites\": {", out);
    write_sites(out, host_sites);
    fputs("}}\n", out);
}

__attribute__((destructor)) static void finish(void)
{
    depth = 0;
    selector = SYSCALL_DISPATCH_FILTER_ALLOW;
    long total = 0, by_main = 0;
    for (int c = 0; c < C_COUNT; ++c) total += atomic_load(&counts[c]), by_main += atomic_load(&host_counts[c]);
    fprintf(stderr, "adac-rtcheck: %ld brackets on %ld threads, %ld violations%s", atomic_load(&scopes),
            atomic_load(&threads), total, dispatch_usable ? "" : " (system calls not checked)");
    if (exempt_main) fprintf(stderr, " (and %ld by the main program, exempt)", by_main);
    fputc('\n', stderr);
    const char* path = getenv("ADAC_RTCHECK_REPORT");
    if (!path || !*path) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int) getpid());
    FILE* out = fopen(tmp, "w");
    if (!out) {
        fprintf(stderr, "adac-rtcheck: cannot write %s: %s\n", tmp, strerror(errno));
        return;
    }
    write_report(out);
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "adac-rtcheck: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
}
