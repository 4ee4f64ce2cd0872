/** max |a − b| over two arrays of the same length (a length mismatch is an error, not a silent zip). */
export declare function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number;
/** max |a| */
export declare function maxAbs(a: ArrayLike<number>): number;
