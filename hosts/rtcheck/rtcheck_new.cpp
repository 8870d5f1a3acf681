// adac real-time check: every replaceable operator new/delete (plain, array, sized, aligned, nothrow),
// counted inside a bracket by rtcheck.c (adac_rt_new / adac_rt_delete) and served by glibc's allocator.
#include <cstddef>
#include <new>

extern "C" {
void* adac_rt_new(std::size_t size, std::size_t alignment, int array);
void adac_rt_delete(void* p, int array);
}

#define EXPORT __attribute__((visibility("default")))

namespace {
void* allocate(std::size_t size, std::size_t alignment, int array)
{
    if (void* p = adac_rt_new(size, alignment, array)) return p;
    throw std::bad_alloc();
}
void* allocate_nothrow(std::size_t size, std::size_t alignment, int array) noexcept
{
    return adac_rt_new(size, alignment, array);
}
constexpr std::size_t align(std::align_val_t a) { return static_cast<std::size_t>(a); }
}  // namespace

EXPORT void* operator new(std::size_t n) { return allocate(n, 0, 0); }
EXPORT void* operator new[](std::size_t n) { return allocate(n, 0, 1); }
EXPORT void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate_nothrow(n, 0, 0); }
EXPORT void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate_nothrow(n, 0, 1); }
EXPORT void* operator new(std::size_t n, std::align_val_t a) { return allocate(n, align(a), 0); }
EXPORT void* operator new[](std::size_t n, std::align_val_t a) { return allocate(n, align(a), 1); }
EXPORT void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return allocate_nothrow(n, align(a), 0); }
EXPORT void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return allocate_nothrow(n, align(a), 1); }

EXPORT void operator delete(void* p) noexcept { adac_rt_delete(p, 0); }
EXPORT void operator delete[](void* p) noexcept { adac_rt_delete(p, 1); }
EXPORT void operator delete(void* p, std::size_t) noexcept { adac_rt_delete(p, 0); }
EXPORT void operator delete[](void* p, std::size_t) noexcept { adac_rt_delete(p, 1); }
EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept { adac_rt_delete(p, 0); }
EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept { adac_rt_delete(p, 1); }
EXPORT void operator delete(void* p, std::align_val_t) noexcept { adac_rt_delete(p, 0); }
EXPORT void operator delete[](void* p, std::align_val_t) noexcept { adac_rt_delete(p, 1); }
EXPORT void operator delete(void* p, std::size_t, std::align_val_t) noexcept { adac_rt_delete(p, 0); }
EXPORT void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { adac_rt_delete(p, 1); }
EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { adac_rt_delete(p, 0); }
EXPORT void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { adac_rt_delete(p, 1); }
