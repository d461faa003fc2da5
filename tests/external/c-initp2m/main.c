//! @expect-line: mfn_list: 0x0000008000000000
//! @expect-line: first_p2m_pfn: 0x0000000000000400
//! @expect-line: nr_p2m_frames: 0x0000000000000023
/* A PV guest with an INIT_P2M note: its P2M list is mapped at 512 GiB by
 * tables of its own. Checks start_info's description of it against the
 * list itself and the M2P, reports, and powers off.
 *
 * The numbers are Xen 4.17's for a 64 MiB dom0 (16384 pages): the list is
 * 128 KiB (32 pages) and takes an L3, an L2 and an L1 besides, 35 frames
 * from pfn 1024, the first after the 4 MiB initial allocation. */
typedef unsigned long u64;
typedef unsigned int u32;

extern char hypercall_page[];

static long hypercall3(unsigned nr, u64 a1, u64 a2, u64 a3)
{
    register u64 rdi asm("rdi") = a1;
    register u64 rsi asm("rsi") = a2;
    register u64 rdx asm("rdx") = a3;
    long ret;
    asm volatile("call *%[entry]"
                 : "=a"(ret), "+r"(rdi), "+r"(rsi), "+r"(rdx)
                 : [entry] "r"(hypercall_page + nr * 32)
                 : "rcx", "r11", "r8", "r9", "r10", "memory");
    return ret;
}

void *memset(void *d, int c, unsigned long n)
{
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) *p++ = *q++;
    return d;
}

static unsigned long len(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static void puts_(const char *s) { hypercall3(18, 0, len(s), (u64)s); }

static void putx(u64 v)
{
    char buf[19] = "0x";
    for (int i = 0; i < 16; i++) {
        unsigned d = (v >> (60 - 4 * i)) & 0xf;
        buf[2 + i] = d < 10 ? '0' + d : 'a' + d - 10;
    }
    buf[18] = 0;
    puts_(buf);
}

static void field(const char *name, u64 v)
{
    puts_(name);
    puts_(": ");
    putx(v);
    puts_("\n");
}

static int failures;
static void check(const char *what, int ok)
{
    puts_(ok ? "PASS: " : "FAIL: ");
    puts_(what);
    puts_("\n");
    failures += !ok;
}

/* x86_64 start_info, by offset. */
#define SI_U64(si, off) (*(const volatile u64 *)((const char *)(si) + (off)))
#define SI_NR_PAGES 32
#define SI_MFN_LIST 104
#define SI_FIRST_P2M_PFN 1152
#define SI_NR_P2M_FRAMES 1160

/* The read-only M2P every PV guest sees. */
#define M2P ((const volatile u64 *)0xffff800000000000UL)

void c_main(const void *si)
{
    u64 nr_pages = SI_U64(si, SI_NR_PAGES);
    u64 list = SI_U64(si, SI_MFN_LIST);
    u64 first = SI_U64(si, SI_FIRST_P2M_PFN);
    u64 frames = SI_U64(si, SI_NR_P2M_FRAMES);
    field("nr_pages", nr_pages);
    field("mfn_list", list);
    field("first_p2m_pfn", first);
    field("nr_p2m_frames", frames);
    check("mfn_list is the INIT_P2M address", list == 0x8000000000UL);
    const volatile u64 *p2m = (const volatile u64 *)list;
    /* Every entry maps back through the M2P (the first read of the list
     * faults if it is not mapped). */
    u64 bad = 0;
    for (u64 pfn = 0; pfn < nr_pages; pfn++)
        bad += M2P[p2m[pfn]] != pfn;
    check("every mfn_list entry is its pfn's frame in the M2P", bad == 0);
    /* The list's own frames (its last page holds the last entries) are
     * pfns from first_p2m_pfn on. */
    check("the P2M frames lie in the domain", first + frames <= nr_pages);
    check("the list is 8 bytes a page, plus its tables",
          frames >= (nr_pages * 8 + 4095) / 4096);
    puts_(failures ? "Test result: FAILURE\n" : "Test result: SUCCESS\n");
    u32 reason = 0; /* SHUTDOWN_poweroff */
    hypercall3(29, 2, (u64)&reason, 0);
    for (;;)
        ;
}
