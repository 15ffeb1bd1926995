import Foundation
import Model
@testable import Mount
import Testing

/// What a failed filesystem call becomes when an RPC reports it (flush, checkpoint,
/// mount): the code a user can act on, never INTERNAL for a full disk or a refusal.
@Suite struct FSErrorTests {
    @Test func diskAndPermissionErrnosKeepTheirMeaning() {
        let full = FSError(ENOSPC, "journal append: No space left on device").mesaError
        #expect(full.code == .noSpace && full.errorClass == .transient && full.errno == ENOSPC && full.rpcCode == -32011)
        #expect(FSError(EDQUOT, "quota").mesaError.code == .noSpace)
        #expect(FSError(EACCES, "denied").mesaError.code == .forbidden)
        #expect(FSError(EPERM, "not permitted").mesaError.code == .forbidden)
        // A failure that carries the backend's own error keeps it (KEY_REVOKED stays).
        let revoked = MesaError(.keyRevoked, "key 'sandbox' was revoked")
        #expect(FSError(revoked).mesaError.code == .keyRevoked)
        #expect(FSError(MesaError(.noSpace, "store full")).errno == ENOSPC)
    }
}
